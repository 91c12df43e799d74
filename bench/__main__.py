"""Run the benchmark modules and write the whole benchmarks page in one run.

Each ``bench/bench_*.py`` module defines ``TITLE`` and
``run(args) -> Section``: it starts the servers it needs (through
``tests/servers``), measures stowage and django-storages side by side and
returns its rows, each judged against its goal (``bench/goals.py``).

``python -m bench`` runs every module and rewrites docs/benchmarks.md, with
the figures as JSON in docs/benchmarks.json; nothing of an earlier run is
kept. ``python -m bench static --publish`` runs the named modules at full
size and replaces their sections on the page, keeping the others: a whole
run takes hours, and each section names the run (date, commit, minutes)
that measured it. ``--quick`` (tiny sizes, two runs per pair) and a
selection without ``--publish`` (``python -m bench s3 gcs``) write to
test-artifacts/ instead. A section that fails is left out: the others are
written, and the run ends with an error naming it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import bench
from bench._measure import ROOT, Section

DOCS = ROOT / "docs" / "benchmarks.md"
ARTIFACTS = ROOT / "test-artifacts"
#: The least number of runs per pair the published page accepts.
MIN_RUNS = 5


def modules(selected: list[str]) -> list[str]:
    """Return the benchmark modules to run: ``selected``, or all of them."""
    found = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    )
    unknown = set(selected) - set(found)
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}; available: {found}")
    return [name for name in found if not selected or name in selected]


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    import django

    found = [f"Python {platform.python_version()}", f"Django {django.get_version()}"]
    for dist in (
        "django-stowage",
        "django-storages",
        "obstore",
        "boto3",
        "moto",
        "google-cloud-storage",
        "azure-storage-blob",
        "paramiko",
        "asyncssh",
        "playwright",
    ):
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    return found


def _commit() -> str:
    """Return the commit the run measured, marked when the tree had changes."""
    import subprocess

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # The page itself does not count: a run that publishes one section keeps the others.
    pages = (DOCS, DOCS.with_suffix(".json"))
    changed = git("status", "--porcelain", "--", ".", *(f":!{p.relative_to(ROOT)}" for p in pages))
    return f"{commit} (with uncommitted changes)" if changed else commit


def _run(args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """Describe the run that measured a section: when, at which commit, on what."""
    return {
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
        "commit": _commit(),
        "minutes": round(seconds / 60, 1),
        "runs": args.runs,
        "machine": (
            f"{platform.machine()}, {platform.system()} {platform.release()}, "
            f"{os.cpu_count() or 1} CPUs"
        ),
        "versions": _versions(),
    }


def _header(quick: bool, sections: list[Section]) -> str:
    rows = [row.judged() for section in sections for row in section.rows]
    met = sum(1 for row in rows if row["met"])
    mode = " (quick mode: tiny sizes, not for quoting)" if quick else ""
    runs = [section.run for section in sections]
    commits = sorted({run["commit"] for run in runs})
    missing = [name for name in modules([]) if name not in {s.name for s in sections}]
    lines = [
        f"# Benchmarks{mode}",
        "",
        "stowage and django-storages measured side by side on the same local servers; "
        "this page is written by `make bench` from its runs. Ratios are django-storages' "
        "median over stowage's: above 1 favours stowage.",
        "",
        f"- Method: each pair runs at least {min(run['runs'] for run in runs)} times, the "
        "side going first alternating from run to run; figures are medians with the spread "
        "(lowest to highest) in brackets. django-storages runs with its own defaults; a row "
        "with another setting says so. Peak memory is measured in fresh processes, above "
        "each library's own idle process (Django and that library imported, nothing else). "
        "A cold import is timed inside a fresh interpreter that has imported Django's "
        "storage module: the backend's import alone, from its bytecode caches.",
        "- Goals: from the project's performance issues, kept in `bench/goals.py`; every "
        "row is held at least to parity (≥ 1×), and whether it is met is computed from the "
        f"measured ratio. On this page: {met} of {len(rows)} rows meet their goal.",
        "- Runs: `make bench` measures every section in one run; "
        '`make bench ARGS="static --publish"` measures one section again and replaces it '
        "here. Each section ends with the run that measured it. "
        + ("Commit: " if len(commits) == 1 else "Commits: ")
        + ", ".join(commits)
        + ".",
    ]
    if missing:
        lines.append(
            f"- Not yet measured in a published run: {', '.join(missing)} "
            '(`make bench ARGS="NAME --publish"`).'
        )
    for label, key in (("Machine", "machine"), ("Versions", "versions")):
        values = {json.dumps(run[key]) for run in runs}
        if len(values) == 1:
            value = runs[0][key]
            lines.append(f"- {label}: {', '.join(value) if isinstance(value, list) else value}")
        else:
            lines.append(f"- {label}: differ between runs; see each section's run in the JSON.")
    return "\n".join(lines) + "\n"


def write_page(output: Path, quick: bool, sections: list[Section]) -> None:
    """Write the page and its JSON record from ``sections``, in the modules' order."""
    order = {name: index for index, name in enumerate(modules([]))}
    sections = sorted(sections, key=lambda section: order.get(section.name, len(order)))
    body = "\n".join(section.markdown() for section in sections)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(_header(quick, sections) + "\n" + body)
    record = {"quick": quick, "sections": [section.record() for section in sections]}
    output.with_suffix(".json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def published(output: Path) -> list[Section]:
    """Return the sections of the page at ``output``, read from its JSON record."""
    path = output.with_suffix(".json")
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    return [Section.from_record(section) for section in record["sections"]]


def _output(args: argparse.Namespace) -> Path:
    if args.output is not None:
        return Path(args.output)
    if args.quick:
        return ARTIFACTS / "benchmarks-quick.md"
    if args.names and not args.publish:
        return ARTIFACTS / f"benchmarks-{'-'.join(args.names)}.md"
    return DOCS


def main(argv: list[str] | None = None) -> Path:
    """Run the selected benchmarks, write the page and its JSON; return the page's path."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and two runs per pair (a smoke test)"
    )
    parser.add_argument("--runs", type=int, help=f"runs per pair (default {MIN_RUNS}; quick 2)")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="replace the named sections on the page, keeping the others",
    )
    parser.add_argument("--output", help="where to write the page (default: see above)")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.quick else MIN_RUNS
    output = _output(args)
    if args.publish and (args.quick or not args.names):
        parser.error("--publish replaces named sections of a full-size page: give their names")
    if output.resolve() == DOCS and (
        args.quick or (args.names and not args.publish) or args.runs < MIN_RUNS
    ):
        parser.error(
            f"{DOCS.name} is written only by full-size runs with at least {MIN_RUNS} runs "
            "per pair, of every module or of the modules named with --publish; give --output "
            "for anything else"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    started = time.monotonic()
    sections: list[Section] = []
    failed: list[str] = []
    for name in modules(args.names):
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {module.TITLE}", flush=True)
        began = time.monotonic()
        try:
            section: Section = module.run(args)
        except Exception:
            # One broken section must not cost the hours the others took: they are
            # written, and the page says which section is missing.
            traceback.print_exc()
            failed.append(name)
            continue
        section.run = _run(args, time.monotonic() - began)
        sections.append(section)
        print(section.markdown(), flush=True)
    if args.publish:
        measured = {section.name for section in sections}
        sections += [s for s in published(output) if s.name not in measured]
    if sections:
        write_page(output, args.quick, sections)
        print(f"wrote {output} in {time.monotonic() - started:.0f} s")
    if failed:
        raise SystemExit(
            f"section(s) {', '.join(failed)} failed (above); the page holds the others. "
            f'Measure them again with make bench ARGS="{" ".join(failed)} --publish".'
        )
    return output


if __name__ == "__main__":
    main()
