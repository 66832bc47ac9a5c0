"""A worker process puts its start-up heap out of the garbage collector's reach, so that a full
collection walks only what work made (a stall of a few milliseconds, not of 100)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Fires a worker's start-up signal in a fresh interpreter (the app is only imported, nothing
# connects) and prints how many objects are frozen before and after, and whether a full
# collection still runs.
PROBE = """
import gc, sys
from celery import signals
from workers import application
before = gc.get_freeze_count()
getattr(signals, sys.argv[1]).send(sender=None)
after = gc.get_freeze_count()
print(before, after, gc.isenabled(), gc.collect() >= 0)
"""


@pytest.mark.parametrize("signal", ["celeryd_after_setup", "worker_process_init",
                                    "worker_ready", "beat_init"])
def test_each_worker_process_freezes_its_start_up_heap(signal):
    done = subprocess.run([sys.executable, "-c", PROBE, signal], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                      "NOTIFIER_LOG_LEVEL": "WARNING"})
    assert done.returncode == 0, done.stderr
    before, after, enabled, collected = done.stdout.split()
    assert int(before) == 0
    assert int(after) > 10_000  # the modules, classes and settings start-up made
    assert (enabled, collected) == ("True", "True")  # collection goes on for the rest
