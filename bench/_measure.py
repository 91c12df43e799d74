"""Measure client CPU, wall time and peak memory the same way for every benchmark."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Timing", "measure", "peak_rss_mib", "ratio", "section"]


@dataclass(frozen=True)
class Timing:
    """Median wall and client-CPU seconds per call over several runs."""

    wall: float
    cpu: float


def measure(call: Callable[[], object], *, repeat: int = 5, number: int = 1) -> Timing:
    """Time ``number`` calls ``repeat`` times; return the medians per call."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            call()
        walls.append((time.perf_counter() - wall0) / number)
        cpus.append((time.process_time() - cpu0) / number)
    return Timing(statistics.median(walls), statistics.median(cpus))


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio(theirs: float, ours: float) -> str:
    """Format how many times faster (or smaller) ours is than theirs."""
    if ours <= 0:
        return "∞"
    return f"{theirs / ours:.1f}×"


def section(
    name: str, title: str, rows: list[tuple[str, ...]], header: tuple[str, ...], notes: str = ""
) -> str:
    """Return a Markdown section with a marker so reruns replace only it."""
    lines = [f"<!-- bench:{name} -->", f"## {title}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"
