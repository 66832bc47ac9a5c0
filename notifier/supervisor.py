"""Start and stop a group of service processes (workers, beat, Flower) with one environment.

Used by `notifier up`, the test fleet and the benchmark.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def celery_command(*args: str, app: str = "workers") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", app, *args]


def worker_command(name: str, queue: str, *, concurrency: int, pool: str = "threads",
                   loglevel: str = "INFO", app: str = "workers") -> list[str]:
    return celery_command("worker", "-n", f"{name}@%h", "-Q", queue, "-P", pool,
                          "-c", str(concurrency), "-l", loglevel, "--without-gossip",
                          "--without-mingle", app=app)


def beat_command(schedule_file: Path, loglevel: str = "INFO") -> list[str]:
    return celery_command("beat", "-s", str(schedule_file), "-l", loglevel)


def api_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", "notifier.api:create_app",
            "--host", host, "--port", str(port)]


def flower_command(port: int) -> list[str]:
    return celery_command("flower", f"--port={port}", "--address=127.0.0.1")


@dataclass
class ProcessGroup:
    """Named child processes sharing one environment, each logging to its own file (or ours)."""

    env: dict[str, str]
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(command, env=self.env, stdout=output,
                                   stderr=subprocess.STDOUT if output else None,
                                   start_new_session=True)
        if output is not None:
            output.close()
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``name`` and wait for it to end."""
        process = self.processes.pop(name)
        _signal_group(process, sig)
        process.wait(timeout=30)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask every process to stop (SIGTERM); kill what is still running after the timeout.

        SIGTERM goes to the main process only: a Celery worker then finishes its tasks, while
        its prefork children (which reset SIGTERM to the default) would die mid-task.
        """
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    def exited(self) -> dict[str, int]:
        """Processes that have ended, with their exit codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
