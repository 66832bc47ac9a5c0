"""Running the real `notifier` command in a test's own folder, and reading what it printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from notifier.db import make_engine
from notifier.migrate import upgrade

TIMEOUT_S = 60
NOTIFIER = Path(sys.executable).with_name("notifier")
COMMAND = [str(NOTIFIER)] if NOTIFIER.exists() else [sys.executable, "-m", "notifier.cli"]


class Cli:
    """Runs `notifier` in ``folder`` with its own SQLite database and broker folder; ``env``
    adds settings (NOTIFIER_* variables of the test process itself are not seen)."""

    def __init__(self, folder: Path, **env: str):
        self.folder = folder
        self.database_url = f"sqlite:///{folder / 'n.db'}"
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("NOTIFIER_")}
        self.env.update(NOTIFIER_DATABASE_URL=self.database_url,
                        NOTIFIER_BROKER_URL=f"filesystem://{folder / 'broker'}", **env)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*COMMAND, *args], cwd=self.folder, env={**self.env, **env},
                              capture_output=True, text=True, timeout=TIMEOUT_S)

    def migrate(self) -> None:
        engine = make_engine(self.database_url)
        upgrade(engine)
        engine.dispose()

    def queued_files(self) -> list[Path]:
        queue = self.folder / "broker" / "queue"
        return sorted(p for p in queue.iterdir() if p.is_file()) if queue.exists() else []


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def single_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]
