"""The Prometheus alert rules: valid, each shown to fire and to stay quiet by promtool's unit
tests, each with a runbook section in docs/operations.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian package prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def test_the_rules_are_valid(promtool):
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass(promtool):
    done = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True,
                          text=True, timeout=120, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_every_alert_is_shown_firing_and_quiet():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]
    for name in alert_names():
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} is never shown firing"
        assert any(not case["exp_alerts"] for case in mine), f"{name} is never shown quiet"


def test_every_alert_has_a_runbook_section():
    headings = re.findall(r"^### (\S+)", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert set(alert_names()) <= set(headings)
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


def test_the_compose_prometheus_config_is_valid(promtool):
    done = subprocess.run([promtool, "check", "config", "prometheus.yml"], capture_output=True,
                          text=True, timeout=60, cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_and_the_rules_use_only_documented_metrics():
    documented = set(re.findall(r"`(notifier_[a-z_]+)", (ROOT / "README.md").read_text()))
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "notifier.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
              for rule in group["rules"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name)
            for expr in exprs for name in re.findall(r"\bnotifier_[a-z_]+", expr)}
    assert used and used <= documented, used - documented
