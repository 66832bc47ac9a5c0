"""The real workers with faults a test switches on, for the dead-letter tests.

Start a worker with ``-A tests.faulty_workers`` and NOTIFIER_TEST_FAULTS naming a folder. A
file ``fail-NAMESPACE`` there makes the fan-out of that namespace's events raise; a file
``kill-NAMESPACE`` makes it kill the process running it (as a poison message would). Removing
the file is "fixing the cause".
"""

from __future__ import annotations

import os
from pathlib import Path

import notifier.runtime as runtime_module
from workers import app  # noqa: F401  (the app Celery loads)

_real_fan_out = runtime_module.fan_out


def _faulty_fan_out(session, message, **options):
    folder = Path(os.environ["NOTIFIER_TEST_FAULTS"])
    namespace = str(message.get("repository", "")).split("/")[0]
    if (folder / f"kill-{namespace}").exists():
        os._exit(70)
    if (folder / f"fail-{namespace}").exists():
        raise RuntimeError(f"injected failure for {namespace}")
    return _real_fan_out(session, message, **options)


runtime_module.fan_out = _faulty_fan_out
