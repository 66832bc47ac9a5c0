"""The web UI under test in a real browser: Debian's Chromium driven by Playwright, against a
real uvicorn process sharing the test fleet's database, broker and workers.

Screenshots go to the test's folder, or to NOTIFIER_UI_SCREENSHOTS when it is set (the README's
picture in docs/ is made that way).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from notifier.api.tokens import create_token
from notifier.db import transaction
from notifier.directory import grant, save_organization, save_user
from tests.fleet import free_port
from notifier.supervisor import ProcessGroup, api_command

CHROMIUM = os.environ.get("NOTIFIER_TEST_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 30_000


def chromium_or_skip() -> str:
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@dataclass
class People:
    """One organization's repository with an admin and a reader, and their user tokens."""

    repository: str
    admin: str
    reader: str
    tokens: dict[str, str]


def seed_people(factory) -> People:
    tag = uuid.uuid4().hex[:6]
    org, admin, reader = f"org{tag}", f"ada{tag}", f"rex{tag}"
    repository = f"{org}/web"
    with transaction(factory) as session:
        save_user(session, admin, email=f"{admin}@example.com")
        save_user(session, reader)
        save_organization(session, org, admins=[admin])
        grant(session, repository, "read", user=reader)
        tokens = {admin: create_token(session, user=admin),
                  reader: create_token(session, user=reader)}
    return People(repository, admin, reader, tokens)


def start_ui_api(fleet, workdir: Path, extra_env: dict[str, str]) -> tuple[ProcessGroup, str]:
    """A uvicorn process of the app on the fleet's database and broker, with ``extra_env``."""
    group = ProcessGroup(env={**fleet.env, **extra_env}, log_dir=workdir / "logs")
    port = free_port()
    group.start("ui-api", api_command("127.0.0.1", port))
    return group, fleet._wait_until_answers(f"http://127.0.0.1:{port}", "/readyz")


def screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("NOTIFIER_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
