"""What an accepted publish costs when Redis fsyncs every write.

    python bench/durability.py --events 3000

Starts two private redis-servers on loopback with an append-only file, one with
`appendfsync everysec` (a crash can drop the last second of accepted events) and one with
`appendfsync always` (what the compose file runs: an accepted event is on disk), and publishes
the same events through `Producer.publish` to each, alternating rounds so both see the same
machine. Prints events/s and publish latency p50/p99 per policy. Asserts nothing; removes its
servers and folders at the end.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import redis

from config import load_settings
from notifier.producer import Producer, client_app

POLICIES = ("everysec", "always")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(folder: Path, policy: str) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfsync", policy, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            return process, port
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    sys.exit(f"bench: redis-server ({policy}) did not answer within 10 s")


def publish_round(producer: Producer, count: int) -> list[float]:
    latencies = []
    for number in range(count):
        started = time.perf_counter()
        producer.publish("bench/durability", "repo_push", {"updated_tags": [f"t{number}"]})
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events per policy")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per policy")
    args = parser.parse_args()
    per_round = max(1, args.events // args.rounds)
    with ExitStack() as stack:
        producers = {}
        for policy in POLICIES:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-aof-")))
            process, port = start_redis(folder, policy)
            stack.callback(process.wait, 10)
            stack.callback(process.terminate)
            settings = load_settings(broker_url=f"redis://127.0.0.1:{port}/0",
                                     database_url="sqlite:///unused.db")
            producers[policy] = Producer(client_app(settings), settings)
            publish_round(producers[policy], 50)  # connections and imports warmed up
        results: dict[str, list[float]] = {policy: [] for policy in POLICIES}
        elapsed = dict.fromkeys(POLICIES, 0.0)
        for _ in range(args.rounds):
            for policy in POLICIES:
                started = time.perf_counter()
                results[policy] += publish_round(producers[policy], per_round)
                elapsed[policy] += time.perf_counter() - started
    print(f"{per_round * args.rounds} events per policy, {args.rounds} alternating rounds")
    for policy in POLICIES:
        latencies = sorted(results[policy])
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"appendfsync {policy:8}: {len(latencies) / elapsed[policy]:7.0f} events/s  "
              f"p50 {statistics.median(latencies) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
