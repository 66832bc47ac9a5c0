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
                   loglevel: str = "INFO", quiet: bool = False,
                   app: str = "workers") -> list[str]:
    """``quiet`` leaves out Celery's start-up banner."""
    return celery_command(*(["--quiet"] if quiet else []),
                          "worker", "-n", f"{name}@%h", "-Q", queue, "-P", pool,
                          "-c", str(concurrency), "-l", loglevel, "--without-gossip",
                          "--without-mingle", app=app)


def beat_command(schedule_file: Path, loglevel: str = "INFO", quiet: bool = False) -> list[str]:
    return celery_command(*(["--quiet"] if quiet else []),
                          "beat", "-s", str(schedule_file), "-l", loglevel)


def api_command(host: str, port: int, access_log: bool = True) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", "notifier.api:create_app",
            "--host", host, "--port", str(port), *([] if access_log else ["--no-access-log"])]


# Flower's task list: what was delivered where (the arguments text), and why it failed.
FLOWER_TASK_COLUMNS = "name,state,args,exception,received,runtime,worker,uuid"


def flower_command(port: int, address: str = "127.0.0.1", quiet: bool = False) -> list[str]:
    return celery_command("flower", f"--port={port}", f"--address={address}",
                          f"--tasks_columns={FLOWER_TASK_COLUMNS}",
                          *(["--logging=warning"] if quiet else []))


@dataclass
class ProcessGroup:
    """Named child processes sharing one environment, each logging to its own file (or ours)."""

    env: dict[str, str]
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str],
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``command`` as ``name``; ``env`` adds variables for this process only."""
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(command, env={**self.env, **(env or {})}, stdout=output,
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
