"""The README's quick start, run as written: its commands are read from README.md and run, block by
block, in the terminal each block names, from the repository's folder.

Only the environment differs from a newcomer's: the database, the broker folder and the API and
Flower ports are this test's own (so that it leaves nothing in ./var and takes no port another
service holds), and no NOTIFIER_* variable of the test run leaks in, so that what the README says
to export is all the commands get.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from tests.fleet import free_port

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LONG_RUNNING = ("./dev up", "notifier listen")  # they run until Ctrl-C, like in a terminal
START_TIMEOUT_S = 600  # the first ./dev up installs the project into .venv
WAIT_TIMEOUT_S = 120
COMMAND_TIMEOUT_S = 120
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class Block:
    terminal: int
    commands: list[str]


def quickstart_blocks(readme: str) -> list[Block]:
    """The ```sh blocks of the quick start, each opened by a ``# terminal N`` line."""
    section = readme.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for text in re.findall(r"```sh\n(.*?)```", section, re.S):
        lines = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]
        header = re.fullmatch(r"# terminal (\d+)(:.*)?", lines[0])
        assert header, f"a quick start block must start with '# terminal N': {lines[0]!r}"
        blocks.append(Block(int(header[1]),
                            [line for line in lines[1:] if not line.startswith("#")]))
    return blocks


@dataclass
class Terminal:
    """One terminal: `source` and `export` lines stay in effect for its later commands."""

    name: str
    env: dict[str, str]
    log: Path
    setup: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    children: list[psutil.Process] = field(default_factory=list)

    def run_block(self, block: Block) -> list[tuple[str, str]]:
        """Run the block's commands in order; returns each short command with its output."""
        outputs = []
        for command in block.commands:
            if command.startswith(("source ", "export ")):
                self.setup.append(command)
            elif command.startswith(LONG_RUNNING):
                self.start(command)
            else:
                outputs.append((command, self.run(command)))
        return outputs

    def script(self, command: str, *, replace: bool = False) -> list[str]:
        final = f"exec {command}" if replace else command
        return ["bash", "-c", "; ".join(["set -e", *self.setup, final])]

    def run(self, command: str) -> str:
        done = subprocess.run(self.script(command), cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=COMMAND_TIMEOUT_S)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def start(self, command: str) -> None:
        assert self.process is None, f"{self.name} is still running {self.process.args}"
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.script(command, replace=True), cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_for_output(self, pattern: str, count: int = 1) -> None:
        wait_until(lambda: len(re.findall(pattern, self.output())) >= count,
                   lambda: f"{self.name} never printed {pattern!r} {count} time(s):\n"
                           f"{self.output()}")

    def ctrl_c(self) -> int:
        """Stop the running command as Ctrl-C does; returns its exit code."""
        process, self.process = self.process, None
        self.children += psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=60)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.ctrl_c()
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        for child in self.children:
            if child.is_running():
                child.kill()


def wait_until(condition, message, timeout_s: float = WAIT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.5)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def run_until(terminal: Terminal, command: str, pattern: str) -> str:
    """Run ``command`` again (as a newcomer would) until its output matches ``pattern``."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while True:
        output = terminal.run(command)
        if re.search(pattern, output, re.M):
            return output
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} never showed {pattern!r}; last output:\n{output}")
        time.sleep(1)


@pytest.fixture
def api_port() -> int:
    return free_port()


@pytest.fixture
def terminals(tmp_path, api_port):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("NOTIFIER_", "VIRTUAL_ENV"))}
    env.update(NOTIFIER_DATABASE_URL=f"sqlite:///{tmp_path / 'notifier.db'}",
               NOTIFIER_BROKER_URL=f"filesystem://{tmp_path / 'broker'}",
               NOTIFIER_API_PORT=str(api_port), NOTIFIER_FLOWER_PORT=str(free_port()),
               NOTIFIER_LOG_LEVEL="WARNING")
    made = {n: Terminal(f"terminal {n}", dict(env), tmp_path / f"terminal-{n}.log")
            for n in (1, 2, 3)}
    yield made
    for terminal in reversed(made.values()):
        terminal.close()


def test_the_quick_start_delivers_a_signed_webhook_then_retries(terminals, api_port):
    blocks = quickstart_blocks(README.read_text())
    assert [block.terminal for block in blocks] == [1, 2, 3, 2, 3]
    service, receiver, shell = terminals[1], terminals[2], terminals[3]

    service.run_block(blocks[0])
    wait_until(lambda: answers(f"http://127.0.0.1:{api_port}/readyz"),
               lambda: f"the service never became ready:\n{service.output()}", START_TIMEOUT_S)
    receiver.run_block(blocks[1])
    receiver.wait_for_output(r"Listening on http://127\.0\.0\.1:8900/")

    (add, uuid), (publish, event_id), (deliveries, _) = shell.run_block(blocks[2])
    assert re.fullmatch(rf"{UUID}\n", uuid), (add, uuid)
    assert re.fullmatch(r"\S+\n", event_id), (publish, event_id)
    run_until(shell, deliveries, r"repo_push .*webhook .*delivered")
    receiver.wait_for_output(r"repo_push  webhook-id \S+  signature verified  -> 200")
    assert '"updated_tags":["latest"]' in receiver.output()

    assert receiver.ctrl_c() == 0
    receiver.run_block(blocks[3])
    receiver.wait_for_output(r"answering 500")
    (publish, _), (deliveries, _) = shell.run_block(blocks[4])
    run_until(shell, deliveries, r"retrying .*receiver answered HTTP 500")
    receiver.wait_for_output(r"signature verified  \(attempt 2 of this webhook-id\)  -> 500")
    assert '"updated_tags":["v2"]' in receiver.output()

    assert service.ctrl_c() == 0, service.output()
    assert not [child for child in service.children if child.is_running()
                and child.status() != psutil.STATUS_ZOMBIE]


def test_the_quick_start_blocks_are_found():
    """The parser reads what the README says: a guard against testing nothing."""
    blocks = quickstart_blocks(README.read_text())
    commands = [command for block in blocks for command in block.commands]
    assert "./dev up" in commands
    assert any(c.startswith("notifier listen") and "--status 500" in c for c in commands)
    assert any(c.startswith("notifier notification add") and "127.0.0.1:8900" in c
               for c in commands)
