"""Measure client CPU, wall time and peak memory the same way for every benchmark."""

from __future__ import annotations

import io
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Timing",
    "Zeros",
    "import_row",
    "import_time",
    "measure",
    "peak_rss_mib",
    "ratio",
    "section",
    "small_operations",
]


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
    """Return this process's peak resident memory in MiB.

    Read from /proc (VmHWM) where there is one: getrusage's ``ru_maxrss``
    carries over the parent's peak into a process it started, so a child
    started by a large benchmark process would report the parent's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
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


def small_operations(
    ours: Any,
    theirs: Any,
    *,
    reps: int,
    by: Literal["cpu", "wall"] = "cpu",
    goal: str | None = None,
) -> list[tuple[str, ...]]:
    """Time 1 KiB save (new names), open + read and exists on both storages.

    Each storage must hold ``small.txt``. ``by`` says which measure the ratio
    compares: client CPU (servers slow enough to hide it) or wall time.
    """
    from django.core.files.base import ContentFile

    counter = itertools.count()
    cases = {
        "save 1 KiB (new name)": (
            lambda: ours.save(f"s/{next(counter)}.txt", ContentFile(b"y" * 1024)),
            lambda: theirs.save(f"t/{next(counter)}.txt", ContentFile(b"y" * 1024)),
        ),
        "open + read 1 KiB": (
            lambda: ours.open("small.txt").read(),
            lambda: theirs.open("small.txt").read(),
        ),
        "exists": (lambda: ours.exists("small.txt"), lambda: theirs.exists("small.txt")),
    }
    rows: list[tuple[str, ...]] = []
    for label, (mine, other) in cases.items():
        x = measure(mine, repeat=5, number=reps)
        y = measure(other, repeat=5, number=reps)
        if by == "cpu":
            what = "client CPU per call (wall)"
            cells = [f"{t.cpu * 1e3:.2f} ms ({t.wall * 1e3:.1f} ms)" for t in (x, y)]
            row = (f"{label}: {what}", *cells, ratio(y.cpu, x.cpu))
        else:
            what = "wall per call (client CPU)"
            cells = [f"{t.wall * 1e3:.2f} ms ({t.cpu * 1e3:.2f} ms)" for t in (x, y)]
            row = (f"{label}: {what}", *cells, ratio(y.wall, x.wall))
        rows.append((*row, goal) if goal is not None else row)
    return rows


class Zeros(io.RawIOBase):
    """A seekable file of ``size`` zero bytes made on the fly (no disk, no big buffer)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.pos = 0
        self.name = "zeros.bin"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self.size - self.pos))
        buffer[:count] = bytes(count)
        self.pos += count
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def import_time(module: str) -> float:
    """Return the median cold-import time of ``module``, beyond Django's storage module.

    Modules import from their bytecode caches, as after ``pip install`` (which
    compiles them): an untimed first import writes the caches of a source
    checkout, whatever ``PYTHONDONTWRITEBYTECODE`` says.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def median(statement: str) -> float:
        subprocess.run([sys.executable, "-c", statement], check=True, env=env)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True, env=env)
            times.append(time.perf_counter() - start)
        return sorted(times)[2]

    # Both backends need Django's storage module: count only what comes on top.
    base = median("import django.core.files.storage")
    return max(0.0, median(f"import {module}") - base)


def import_row(ours: str, theirs: str, *, goal: str | None = None) -> tuple[str, ...]:
    """Return the benchmark row comparing the cold imports of two backend modules."""
    a, b = import_time(ours), import_time(theirs)
    row = (
        "cold import of the backend, beyond Django's storage module",
        f"{a * 1e3:.0f} ms",
        f"{b * 1e3:.0f} ms",
        ratio(b, a),
    )
    return (*row, goal) if goal is not None else row
