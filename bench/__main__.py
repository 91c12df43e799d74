"""Run every benchmark module and write docs/benchmarks.md.

Each ``bench/bench_*.py`` module defines ``TITLE`` and ``run(args) -> str``,
which starts the servers it needs (through ``tests/servers``), measures
stowage and django-storages side by side and returns a Markdown section.
``python -m bench s3 gcs`` runs only the modules named; with no names, all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
import platform
import sys
from pathlib import Path

import bench

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _modules(selected: list[str]) -> list[str]:
    found = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    )
    unknown = set(selected) - set(found)
    if unknown:
        sys.exit(f"unknown benchmark(s) {sorted(unknown)}; available: {found}")
    return [name for name in found if not selected or name in selected]


def _header() -> str:
    import django

    versions = [f"Python {platform.python_version()}", f"Django {django.get_version()}"]
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
    ):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            continue
    return (
        "# Benchmarks\n\n"
        "stowage and django-storages measured side by side on the same local servers, in one "
        "run. Ratios above 1 favour stowage. Reproduce with `make bench` "
        "(one section: `make bench ARGS=s3`).\n\n"
        f"- Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"{_cpu_count()} CPUs\n"
        f"- Versions: {', '.join(versions)}\n"
    )


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


def main() -> None:
    """Run the selected benchmarks and rewrite their sections of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    args = parser.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    sections = _existing_sections()
    for name in _modules(args.names):
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {module.TITLE}", flush=True)
        sections[name] = module.run(args).strip() + "\n"
        print(sections[name], flush=True)
    body = "\n".join(sections[name] for name in sorted(sections))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(_header() + "\n" + body)
    print(f"wrote {OUTPUT}")


_MARK = "<!-- bench:"


def _existing_sections() -> dict[str, str]:
    """Keep the sections of modules not rerun this time."""
    if not OUTPUT.exists():
        return {}
    sections: dict[str, str] = {}
    current = None
    for line in OUTPUT.read_text().splitlines(keepends=True):
        if line.startswith(_MARK):
            current = line[len(_MARK) :].split("-->")[0].strip()
            sections[current] = ""
        if current is not None:
            sections[current] += line
    return {name: text.strip() + "\n" for name, text in sections.items()}


if __name__ == "__main__":
    main()
