"""Measure both libraries the same way in every benchmark, and judge each row against its goal.

Every comparison is a *pair*: one run of stowage and one of django-storages,
``runs`` times, the side that goes first alternating from run to run (a
warm cache or a busy moment then falls on both alike). Each figure is the
median of its runs, shown with the spread (lowest to highest); the ratio is
django-storages' median over stowage's, so above 1 favours stowage. A row
names its goal in :data:`bench.goals.GOALS`, and whether it is met is
computed here, never typed.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.goals import GOALS, short_of, verdict

__all__ = [
    "ROOT",
    "Metrics",
    "Row",
    "Section",
    "Spread",
    "Zeros",
    "child_main",
    "import_row",
    "memory_pair",
    "memory_row",
    "paired",
    "peak_rss_mib",
    "ratio_text",
    "run_child",
    "small_operations",
    "timed",
    "timing_row",
]

ROOT = Path(__file__).resolve().parent.parent
Metrics = Mapping[str, float]


@dataclass(frozen=True)
class Spread:
    """The median of several runs and their lowest and highest values."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Return the spread of ``values`` (at least one)."""
        return cls(statistics.median(values), min(values), max(values))

    def show(self, scale: float, unit: str, digits: int = 1) -> str:
        """Format as ``median unit (low-high)``, each value multiplied by ``scale``."""
        m, lo, hi = (f"{v * scale:,.{digits}f}" for v in (self.median, self.low, self.high))
        return f"{m} {unit} ({lo}\u2013{hi})"


def paired(
    ours: Callable[[], Metrics], theirs: Callable[[], Metrics], runs: int
) -> tuple[dict[str, Spread], dict[str, Spread]]:
    """Run each side ``runs`` times, alternating which goes first; return each side's spreads."""
    results: dict[str, list[Metrics]] = {"ours": [], "theirs": []}
    sides = {"ours": ours, "theirs": theirs}
    for index in range(runs):
        order = ("ours", "theirs") if index % 2 == 0 else ("theirs", "ours")
        for side in order:
            results[side].append(sides[side]())
    return _spreads(results["ours"]), _spreads(results["theirs"])


def _spreads(runs: list[Metrics]) -> dict[str, Spread]:
    return {key: Spread.of([run[key] for run in runs]) for key in runs[0]}


def timed(call: Callable[[], object], number: int = 1) -> Callable[[], Metrics]:
    """Return one run of ``number`` calls, measuring wall and client CPU seconds per call."""

    def run() -> Metrics:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            call()
        return {
            "wall": (time.perf_counter() - wall) / number,
            "cpu": (time.process_time() - cpu) / number,
        }

    return run


def ratio_text(value: float) -> str:
    """Format a ratio for the page."""
    return "∞" if value == float("inf") else f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def _ratio(theirs: float, ours: float) -> float:
    return float("inf") if ours <= 0 else theirs / ours


@dataclass
class Row:
    """One measured comparison, judged against its goal (a key of GOALS)."""

    label: str
    ours: str
    theirs: str
    ratio: float
    goal: str = "parity"
    #: What the ratio compares, shown beside it (client CPU, wall, memory above idle).
    basis: str = ""
    #: stowage's peak RSS, for goals with a memory ceiling.
    peak_mib: float | None = None
    #: Extra figures for the JSON record.
    figures: dict[str, Any] = field(default_factory=dict)

    def judged(self) -> dict[str, Any]:
        """Return the row with its goal and whether it is met, as recorded in the JSON."""
        goal = GOALS[self.goal]
        met, why = verdict(goal, self.ratio, self.peak_mib)
        return {
            "label": self.label,
            "stowage": self.ours,
            "django-storages": self.theirs,
            "ratio": None if self.ratio == float("inf") else round(self.ratio, 3),
            "basis": self.basis,
            "goal_key": self.goal,
            "goal": goal.describe(),
            "met": met,
            "why_not": why,
            "peak_mib": self.peak_mib,
            **({"figures": self.figures} if self.figures else {}),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Row:
        """Return the row a JSON record (:meth:`judged`) was made from."""
        ratio = record["ratio"]
        return cls(
            record["label"],
            record["stowage"],
            record["django-storages"],
            float("inf") if ratio is None else float(ratio),
            record["goal_key"],
            record["basis"],
            record["peak_mib"],
            dict(record.get("figures", {})),
        )


@dataclass
class Section:
    """A benchmark module's result: its rows and the notes explaining them."""

    name: str
    title: str
    rows: list[Row]
    notes: str = ""
    header: tuple[str, str, str] = ("measure", "stowage", "django-storages")
    #: The run that measured the section: when, at which commit, how long, how.
    run: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Return the section as recorded in the JSON beside the page."""
        return {
            "name": self.name,
            "title": self.title,
            "header": list(self.header),
            "rows": [row.judged() for row in self.rows],
            "notes": self.notes.strip(),
            "run": self.run,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Section:
        """Return the section a JSON record (:meth:`record`) was made from."""
        first, second, third = record["header"]
        return cls(
            record["name"],
            record["title"],
            [Row.from_record(row) for row in record["rows"]],
            record["notes"],
            (first, second, third),
            dict(record["run"]),
        )

    def markdown(self) -> str:
        """Return the section as Markdown: a table with each row's goal and verdict."""
        head = (*self.header, "ratio", "goal", "met")
        lines = [f"## {self.title}", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for row in self.rows:
            judged = row.judged()
            shown = ratio_text(row.ratio)
            if row.ratio < GOALS[row.goal].min_ratio:  # the digits that show it short
                shown = f"{short_of(row.ratio, GOALS[row.goal].min_ratio)}×"
            ratio = shown + (f" {row.basis}" if row.basis else "")
            met = "yes" if judged["met"] else f"**no** ({judged['why_not']})"
            cells = (row.label, row.ours, row.theirs, ratio, judged["goal"], met)
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes.strip():
            lines += ["", " ".join(self.notes.split())]
        if self.run:
            run = self.run
            lines += [
                "",
                f"Measured {run['date']} UTC at commit {run['commit']}, in "
                f"{_duration(run['minutes'])}, {run['runs']} runs per pair.",
            ]
        return "\n".join(lines) + "\n"


def _duration(minutes: float) -> str:
    """Say how long a run took, in whole minutes."""
    whole = round(minutes)
    if whole < 1:
        return "less than a minute"
    return "1 minute" if whole == 1 else f"{whole} minutes"


def timing_row(
    label: str,
    pair: tuple[dict[str, Spread], dict[str, Spread]],
    *,
    by: Literal["cpu", "wall"] = "cpu",
    goal: str = "parity",
    scale: float = 1e3,
    unit: str = "ms",
    digits: int = 2,
) -> Row:
    """Return a row comparing ``by`` (client CPU or wall), the other measure given beside."""
    ours, theirs = pair
    other = "wall" if by == "cpu" else "cpu"
    what = {"cpu": "client CPU", "wall": "wall"}

    def cell(side: dict[str, Spread]) -> str:
        main = side[by].show(scale, unit, digits)
        return f"{main}; {what[other]} {side[other].median * scale:,.{digits}f} {unit}"

    return Row(
        f"{label}: {what[by]}",
        cell(ours),
        cell(theirs),
        _ratio(theirs[by].median, ours[by].median),
        goal,
        what[by],
        figures={
            side: {k: vars(v) for k, v in spreads.items()}
            for side, spreads in (("stowage", ours), ("django-storages", theirs))
        },
    )


def small_operations(
    ours: Any,
    theirs: Any,
    *,
    runs: int,
    number: int,
    by: Literal["cpu", "wall"] = "cpu",
    goal: str = "parity",
    goals: Mapping[str, str] | None = None,
    suffix: str = "",
) -> list[Row]:
    """Time 1 KiB save (new names), open + read and exists on both storages.

    Each storage must hold ``small.txt``. ``by`` says which measure the ratio
    compares: client CPU (servers slow enough to hide it) or wall time.
    ``goal`` judges every row but those ``goals`` names by label.
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
    rows = []
    for label, (mine, other) in cases.items():
        mine(), other()  # connections open and clients built before timing
        pair = paired(timed(mine, number), timed(other, number), runs)
        judged_by = (goals or {}).get(label, goal)
        rows.append(timing_row(f"{label}{suffix}", pair, by=by, goal=judged_by))
    return rows


# -- fresh processes: memory and cold imports ------------------------------------------------


def peak_rss_mib(pid: int | None = None) -> float:
    """Return this process's (or process ``pid``'s) peak resident memory in MiB.

    Read from /proc (VmHWM) where there is one: getrusage's ``ru_maxrss``
    carries over the parent's peak into a process it started, so a child
    started by a large benchmark process would report the parent's size.
    Another process's peak can only be read from /proc.
    """
    try:
        with open(f"/proc/{pid or 'self'}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        if pid is not None:
            raise
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(
    module: str, spec: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Run ``python -m module SPEC`` in a fresh process; return the figures it printed."""
    done = subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{module} {spec.get('case')} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def child_main(operation: Callable[[dict[str, Any]], Mapping[str, float]]) -> None:
    """Run one case in this fresh process and print its figures as JSON.

    The ``idle`` case imports the side's modules (``spec["imports"]``) and
    does nothing else: the baseline that side's peak memory is measured
    above. Any other case is given to ``operation``.
    """
    import importlib

    import django

    spec = json.loads(sys.argv[1])
    django.setup()
    for module in spec.get("imports", ()):
        importlib.import_module(module)
    figures: dict[str, float] = {}
    if spec["case"] != "idle":
        wall, cpu = time.perf_counter(), time.process_time()
        figures.update(operation(spec))
        figures.setdefault("wall", time.perf_counter() - wall)
        figures.setdefault("cpu", time.process_time() - cpu)
    figures["rss"] = peak_rss_mib()
    print(json.dumps(figures))


@dataclass(frozen=True)
class MemoryPair:
    """Peak RSS of each side's operation and of its own idle process, with wall and CPU."""

    ours: dict[str, Spread]
    theirs: dict[str, Spread]


def memory_pair(
    module: str,
    spec: Mapping[str, Any],
    imports: Mapping[str, Sequence[str]],
    runs: int,
    env: Mapping[str, str] | None = None,
) -> MemoryPair:
    """Measure ``spec`` for both sides in fresh processes, each above its own idle process.

    ``imports`` maps each side (``"stowage"``, ``"theirs"``) to the modules
    its idle process imports. Every run measures, per side, an idle process
    and the operation; the growth is the operation's peak less that run's
    idle peak. Sides alternate first as for every pair.
    """

    def side(which: str) -> Callable[[], Metrics]:
        def run() -> Metrics:
            base = {**spec, "side": which, "imports": list(imports[which])}
            idle = run_child(module, {**base, "case": "idle"}, env)
            done = run_child(module, base, env)
            return {
                "wall": done["wall"],
                "cpu": done["cpu"],
                "rss": done["rss"],
                "idle": idle["rss"],
                "growth": max(0.0, done["rss"] - idle["rss"]),
            }

        return run

    ours, theirs = paired(side("stowage"), side("theirs"), runs)
    return MemoryPair(ours, theirs)


def memory_row(label: str, pair: MemoryPair, goal: str = "parity") -> Row:
    """Return a row comparing peak memory above each library's own idle process.

    The ratio counts at least 1 MiB of growth for stowage, so a growth lost
    in the noise does not give an unbounded ratio.
    """

    def cell(side: dict[str, Spread]) -> str:
        return (
            f"+{side['growth'].show(1, 'MiB', 0)} above idle "
            f"{side['idle'].median:.0f} MiB; peak {side['rss'].median:.0f} MiB"
        )

    return Row(
        f"{label}: peak RSS above the library's idle process",
        cell(pair.ours),
        cell(pair.theirs),
        _ratio(pair.theirs["growth"].median, max(pair.ours["growth"].median, 1.0)),
        goal,
        "memory",
        peak_mib=pair.ours["rss"].median,
        figures={
            side: {k: vars(v) for k, v in spreads.items()}
            for side, spreads in (("stowage", pair.ours), ("django-storages", pair.theirs))
        },
    )


#: Imports Django's storage module, then times the import of the modules given, in
#: the same process: what a backend adds on top of Django, without the noise of
#: starting and ending two interpreters.
_TIMED_IMPORT = """\
import time
import django.core.files.storage
start = time.perf_counter()
import {modules}
print(time.perf_counter() - start)
"""


def _import_cost(modules: str, env: Mapping[str, str]) -> float:
    """Return the seconds a fresh interpreter takes to import ``modules`` after Django's."""
    done = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(modules=modules)],
        check=True,
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.split()[-1])


def _import_env() -> dict[str, str]:
    # Modules import from their bytecode caches, as after ``pip install`` (which
    # compiles them): the callers' untimed first import writes those of a checkout.
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def import_costs(modules: Sequence[str], runs: int) -> dict[str, float]:
    """Return each module's cold import in seconds beyond Django's storage module (medians).

    For the floor of an import row: what a library the backend needs costs alone.
    """
    env = _import_env()
    costs = {}
    for module in modules:
        _import_cost(module, env)  # writes the bytecode caches, untimed
        costs[module] = statistics.median(_import_cost(module, env) for _ in range(runs))
    return costs


def import_row(
    ours: str,
    theirs: str,
    *,
    runs: int,
    goal: str = "parity",
    label: str = "cold import of the backend, beyond Django's storage module",
) -> Row:
    """Return the row comparing the cold imports of two backend modules.

    Each run starts a fresh interpreter, imports Django's storage module and
    times only the backend's import after it (``ours`` and ``theirs`` may name
    several modules, comma-separated). An untimed first import writes the
    bytecode caches of a source checkout, as ``pip install`` does.
    """
    env = _import_env()
    for modules in (ours, theirs):
        _import_cost(modules, env)

    def side(modules: str) -> Callable[[], Metrics]:
        def run() -> Metrics:
            return {"wall": _import_cost(modules, env), "cpu": 0.0}

        return run

    pair = paired(side(ours), side(theirs), runs)
    return Row(
        label,
        pair[0]["wall"].show(1e3, "ms", 1),
        pair[1]["wall"].show(1e3, "ms", 1),
        _ratio(pair[1]["wall"].median, pair[0]["wall"].median),
        goal,
        "wall",
    )


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
