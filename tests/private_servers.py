"""Servers of a test's own (redis-server, PostgreSQL) on free loopback ports, so a test can
stop, kill and restart them under a running fleet."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.conftest import create_database, drop_database, service_missing
from tests.fleet import Fleet, free_port, running_fleet

START_TIMEOUT_S = 30


def wait_until_listening(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout_s:g} s")


class PrivateRedis:
    """A redis-server on a free port. ``appendfsync`` set means an append-only file in
    ``folder`` with that fsync policy (what a restart after a crash recovers from)."""

    def __init__(self, folder: Path, appendfsync: str | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", FileNotFoundError("not on PATH"))
        self.port = free_port()
        persistence = (["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync
                       else ["--appendonly", "no"])
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        *persistence, "--dir", str(folder)]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        wait_until_listening(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync (a crash)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda path: int(path.split("/")[4]))
    if not versions:
        service_missing("initdb", FileNotFoundError("PostgreSQL's server binaries not found"))
    return Path(versions[-1]).parent



@contextmanager
def fleet_on_private_redis(workdir: Path, database_prefix: str,
                           appendfsync: str | None = None) -> Iterator[tuple[Fleet, PrivateRedis]]:
    """A fleet on its own PostgreSQL database and a private Redis the test may stop or kill."""
    redis = PrivateRedis(workdir, appendfsync=appendfsync)
    redis.start()
    database = create_database(database_prefix)
    try:
        with running_fleet(workdir, {"NOTIFIER_DATABASE_URL": database,
                                     "NOTIFIER_BROKER_URL": redis.url}) as fleet:
            yield fleet, redis
    finally:
        redis.stop()
        drop_database(database)

class PrivatePostgres:
    """A PostgreSQL server in a temporary folder on a free port (trust auth, no fsync: the
    tests kill nothing but the server's availability). initdb and pg_ctl refuse to run as
    root, so as root they run as the ``postgres`` user."""

    def __init__(self):
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="notifier-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c unix_socket_directories={self.folder}")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as in a failover."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        subprocess.run(self._as_owner("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(self._as_owner(program, *args), capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def _as_owner(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command
