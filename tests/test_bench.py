"""The benchmarks still run, end to end and tiny: they are how speed is measured, so a change
that breaks one must fail here, not in the next person's measurement. Nothing is timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_SERVER, REDIS_SERVER

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[1]


def run(*arguments: str) -> str:
    done = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def bench(redis_db: int, *arguments: str) -> str:
    """A benchmark on the tests' Redis database and PostgreSQL server."""
    return run(*arguments, "--redis-url", REDIS_SERVER, "--redis-db", str(redis_db),
               "--postgres-url", f"{POSTGRES_SERVER}/postgres")


def test_the_pipeline_bench_prints_every_figure(redis_db):
    printed = bench(redis_db, "bench/pipeline.py", "--events", "4", "--notifications", "2",
                    "--receivers", "2", "--rounds", "1", "--slow-receiver", "--send-timeout", "1",
                    "--steady", "0.5", "--steady-seconds", "2", "--fanout-notifications", "20",
                    "--cpu")
    for figure in ("ceiling (bare Celery)", "ratio notifier/ceiling", "healthy throughput",
                   "steady 0.5x", "1 event to 20 notifications", "CPU per delivery",
                   "delivery (main process)", "PostgreSQL", "CPU of a ceiling delivery"):
        assert figure in printed, printed


def test_the_pipeline_bench_runs_on_the_embedded_backend(redis_db):
    printed = bench(redis_db, "bench/pipeline.py", "--backend", "embedded", "--events", "3",
                    "--rounds", "1")
    assert "ratio notifier/ceiling" in printed, printed


def test_the_retention_bench_prints_both_rates(redis_db):
    printed = bench(redis_db, "-m", "bench.retention", "--rows", "500", "--events", "5")
    for figure in ("baseline", "during", "prune"):
        assert figure in printed, printed


def test_the_durability_bench_prints_both_policies():
    printed = run("bench/durability.py", "--events", "20", "--rounds", "1")
    for policy in ("everysec", "always"):
        assert policy in printed, printed


def test_the_ui_pages_bench_prints_every_page():
    printed = run("bench/ui_pages.py", "--backend", "sqlite", "--notifications", "3",
                  "--deliveries", "20", "--runs", "1")
    for page in ("settings", "history, newest page", "in-app inbox"):
        assert page in printed, printed
