"""`notifier up` on the embedded default, as the README's run command: it migrates, serves the
API, Flower and metrics, prints one summary, delivers an event with one outcome line (none per
scheduler tick), and stops everything on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from tests.cli_support import Cli, succeeded
from tests.fleet import free_port, wait_until

pytestmark = pytest.mark.fleet

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def _wait_until_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT_S} s")


def test_up_runs_the_service_and_stops_on_ctrl_c(tmp_path, receiver):
    api_port, flower_port, metrics_port = free_port(), free_port(), free_port()
    while metrics_port + 1 in (api_port, flower_port):
        metrics_port = free_port()
    cli = Cli(tmp_path, NOTIFIER_ALLOWED_NETWORKS="127.0.0.0/8", NOTIFIER_API_PORT=str(api_port),
              NOTIFIER_FLOWER_PORT=str(flower_port), NOTIFIER_METRICS_PORT=str(metrics_port),
              NOTIFIER_METRICS_DIR=str(tmp_path / "metrics"), NOTIFIER_LOG_LEVEL="INFO")
    up = subprocess.Popen([sys.executable, "-m", "notifier.cli", "up"], cwd=tmp_path,
                          env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        _wait_until_ready(f"http://127.0.0.1:{api_port}/readyz", up)
        _wait_until_ready(f"http://127.0.0.1:{flower_port}/healthcheck", up)
        succeeded(cli.run("notification", "add", "acme/web", "--event", "repo_push",
                          "--method", "webhook", "--config", json.dumps({"url": receiver.url})))
        succeeded(cli.run("publish", "acme/web", "repo_push", "--data",
                          '{"updated_tags": ["latest"]}'))
        [request] = receiver.wait_for(1, timeout_s=30)
        assert json.loads(request.body)["updated_tags"] == ["latest"]
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 5  # fan-out, delivery, beat, API, Flower
        _wait_until_ready(f"http://127.0.0.1:{metrics_port + 1}/metrics", up)
        # The receiver has the POST before the worker has read the answer and counted it.
        wait_until(lambda: 'notifier_attempts_total{method="webhook",outcome="delivered"} 1.0'
                   in requests.get(f"http://127.0.0.1:{metrics_port + 1}/metrics",
                                   timeout=5).text, timeout_s=15)
        assert "notifier_deliveries_waiting" in requests.get(
            f"http://127.0.0.1:{api_port}/metrics", timeout=5).text
        time.sleep(3)  # a few more scheduler ticks

        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
            up.wait(timeout=10)
    assert up.returncode == 0, output
    assert "stopped" in output
    lines = output.splitlines()
    summary = lines[lines.index("notifier is running:"):][:8]
    for shown in (f"http://127.0.0.1:{api_port}/", f"http://127.0.0.1:{flower_port}/",
                  f"http://127.0.0.1:{api_port}/metrics", f"{metrics_port + 1}/metrics",
                  f"folder {tmp_path / 'broker'}", "n.db", "Ctrl-C stops it"):
        assert any(shown in line for line in summary), (shown, summary)
    assert len([line for line in lines if "delivered webhook acme/web repo_push" in line]) == 1
    assert not [line for line in lines if "enqueue" in line or "Task notifier.deliver" in line]
    assert "celery@" not in output and "-------------- " not in output  # no Celery banners
    assert not [child for child in children if child.is_running()
                and child.status() != psutil.STATUS_ZOMBIE]
