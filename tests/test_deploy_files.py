"""The compose file and the Procfile keep Flower (no login of its own) off other hosts."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_publishes_flower_on_loopback_and_requires_basic_auth():
    flower = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]

    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["environment"]["NOTIFIER_BROKER_URL"]  # still the fleet's settings


def test_the_procfile_binds_flower_to_loopback():
    [line] = [line for line in (ROOT / "Procfile").read_text().splitlines()
              if line.startswith("flower:")]

    assert "--address=127.0.0.1" in line.split()
