"""Installing the project is quiet: building it (as `pip install .` does, in an isolated build
environment with a current setuptools) prints no warning about its own metadata."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 300


def test_building_the_project_prints_no_warning(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "var", ".git", "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}

    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                           str(tmp_path / "wheel"), str(source)], env=env, text=True,
                          capture_output=True, timeout=BUILD_TIMEOUT_S)
    output = done.stdout + done.stderr

    assert done.returncode == 0, output
    assert not re.search(r"warning|deprecat", output, re.I), output
    [wheel] = (tmp_path / "wheel").glob("notifier-*.whl")
    assert wheel.stat().st_size > 0
