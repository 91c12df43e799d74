"""Run the benchmark modules and write the whole benchmarks page in one run.

Each ``bench/bench_*.py`` module defines ``TITLE`` and
``run(args) -> Section``: it starts the servers it needs (through
``tests/servers``), measures stowage and django-storages side by side and
returns its rows, each judged against its goal (``bench/goals.py``).

``python -m bench`` runs every module and rewrites docs/benchmarks.md, with
the figures as JSON in docs/benchmarks.json; nothing of an earlier run is
kept. ``--quick`` (tiny sizes, two runs per pair) and a selection of modules
(``python -m bench s3 gcs``) write to test-artifacts/ instead, so only a
complete full run ever reaches the docs.
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
from pathlib import Path

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
    return f"{commit} (with uncommitted changes)" if git("status", "--porcelain") else commit


def _header(args: argparse.Namespace, sections: list[Section], seconds: float) -> str:
    rows = [row.judged() for section in sections for row in section.rows]
    met = sum(1 for row in rows if row["met"])
    mode = " (quick mode: tiny sizes, not for quoting)" if args.quick else ""
    return (
        f"# Benchmarks{mode}\n\n"
        "stowage and django-storages measured side by side on the same local servers, in one "
        "run of `make bench`, which writes this whole page. Ratios are django-storages' "
        "median over stowage's: above 1 favours stowage.\n\n"
        f"- Method: each pair runs {args.runs} times, the side going first alternating "
        "from run to run; figures are medians with the spread (lowest to highest) in brackets. "
        "django-storages runs with its own defaults; a row with another setting says so. "
        "Peak memory is measured in fresh processes, above each library's own idle process "
        "(Django and that library imported, nothing else).\n"
        "- Goals: from the project's performance issues, kept in `bench/goals.py`; every "
        "row is held at least to parity (≥ 1×), and whether it is met is computed from the "
        f"measured ratio. This run: {met} of {len(rows)} rows meet their goal.\n"
        f"- Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {seconds / 60:.0f} minutes\n"
        f"- Commit: {_commit()}\n"
        f"- Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"{os.cpu_count() or 1} CPUs\n"
        f"- Versions: {', '.join(_versions())}\n"
    )


def _output(args: argparse.Namespace) -> Path:
    if args.output is not None:
        return Path(args.output)
    if args.quick:
        return ARTIFACTS / "benchmarks-quick.md"
    if args.names:
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
    parser.add_argument("--output", help="where to write the page (default: see above)")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.quick else MIN_RUNS
    output = _output(args)
    if output.resolve() == DOCS and (args.quick or args.names or args.runs < MIN_RUNS):
        parser.error(
            f"{DOCS.name} is written only by a full run of every module with at least "
            f"{MIN_RUNS} runs per pair; give --output for anything else"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    started = time.monotonic()
    sections: list[Section] = []
    for name in modules(args.names):
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {module.TITLE}", flush=True)
        section: Section = module.run(args)
        sections.append(section)
        print(section.markdown(), flush=True)
    seconds = time.monotonic() - started
    body = "\n".join(section.markdown() for section in sections)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(_header(args, sections, seconds) + "\n" + body)
    record = {
        "quick": args.quick,
        "runs": args.runs,
        "seconds": round(seconds, 1),
        "sections": [section.record() for section in sections],
    }
    output.with_suffix(".json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {output} in {seconds:.0f} s")
    return output


if __name__ == "__main__":
    main()
