"""CPU per delivery by process, from /proc (Linux): where a benchmark run's CPU goes.

On a machine whose cores the whole pipeline shares, deliveries/s is about the cores divided by
the CPU one delivery costs everywhere, so this says what a ratio of rates is made of: each
worker's main process and its pool's children, PostgreSQL and Redis (every process of that
name on this machine, whoever uses it), and the benchmark's own publisher and receivers.
"""

from __future__ import annotations

import os
import resource
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
SERVERS = {"postgres": "PostgreSQL", "redis-server": "Redis"}
BENCHMARK = "benchmark (publisher, receivers)"


class CpuUnavailable(Exception):
    """This system has no /proc to read CPU times from."""


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid → (name, parent pid, CPU seconds so far) of every process now running."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        found[int(entry.name)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return found


def snapshot(workers: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far by role: each of ``workers`` (name → pid: the workers and beat) and
    its pool's children, the servers, and this process."""
    if not (PROC / "self" / "stat").exists():
        raise CpuUnavailable("--cpu reads /proc, which this system does not have (Linux only)")
    processes = _processes()
    roles: dict[str, float] = {}
    for name, pid in workers.items():
        roles[f"{name} (main process)"] = processes.get(pid, ("", 0, 0.0))[2]
        children = [cpu for _, parent, cpu in processes.values() if parent == pid]
        if children:
            roles[f"{name} pool children"] = sum(children)
    for command, label in SERVERS.items():
        roles[label] = sum(cpu for name, _, cpu in processes.values() if name == command)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    roles[BENCHMARK] = usage.ru_utime + usage.ru_stime
    return roles


class CpuTally:
    """CPU seconds and deliveries per kind of run (ceiling, notifier, ...), over all rounds."""

    def __init__(self):
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.deliveries: dict[str, int] = defaultdict(int)

    def add(self, kind: str, before: dict[str, float], after: dict[str, float],
            deliveries: int) -> None:
        for role, seconds in after.items():
            self.seconds[kind][role] += seconds - before.get(role, 0.0)
        self.deliveries[kind] += deliveries

    def per_delivery_ms(self, kind: str) -> dict[str, float]:
        count = max(1, self.deliveries[kind])
        return {role: seconds * 1000 / count for role, seconds in self.seconds[kind].items()}

    def table(self) -> str:
        """ms of CPU per delivery by role (rows) and kind of run (columns), with totals."""
        kinds = list(self.seconds)
        per = {kind: self.per_delivery_ms(kind) for kind in kinds}
        roles = sorted({role for kind in kinds for role in per[kind]},
                       key=lambda role: -max(per[kind].get(role, 0.0) for kind in kinds))
        width = max(len(role) for role in roles + ["total"]) + 2
        lines = ["CPU per delivery (ms, all rounds, from /proc):",
                 "  " + "".join([" " * width] + [f"{kind[:22]:>24}" for kind in kinds])]
        for role in roles:
            values = [per[kind].get(role, 0.0) for kind in kinds]
            if max(values) >= 0.01:
                lines.append("  " + f"{role:<{width}}" + "".join(f"{v:>24.2f}" for v in values))
        totals = [sum(per[kind].values()) for kind in kinds]
        lines.append("  " + f"{'total':<{width}}" + "".join(f"{t:>24.2f}" for t in totals))
        total = dict(zip(kinds, totals))
        if total.get("ceiling") and total.get("notifier"):
            lines.append(f"  CPU of a ceiling delivery / a notifier delivery: "
                         f"{total['ceiling'] / total['notifier']:.2f}")
        return "\n".join(lines)
