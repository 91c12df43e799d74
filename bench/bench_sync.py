"""``manage.py stowage sync``: copying a tree of small files to S3 with 1, 8, 32 jobs.

django-storages has no such command, so each row sets stowage against
itself with one job: what running copies at once buys. The destination is
an S3 endpoint that keeps every object and answers each request after
:data:`LATENCY`, many at once, as a service a network round trip away does
(:mod:`bench.latency_s3`): against moto, which answers one request at a time
in Python, more jobs could not gain anything whatever the client did.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._measure import Metrics, Row, Section, paired, timing_row

__all__ = ["TITLE", "run"]

TITLE = "manage.py stowage sync (local disk to S3, 5 ms away)"

#: How long the endpoint holds each answer: a round trip to a nearby service.
LATENCY = 0.005


def _sync(source: Path, target: dict[str, Any], prefix: str, jobs: int) -> Metrics:
    from django.core.files.storage import storages
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(
        STORAGES={
            "default": {"BACKEND": "stowage.LocalStorage", "OPTIONS": {"location": str(source)}},
            "staticfiles": {"BACKEND": "stowage.S3Storage", "OPTIONS": target},
        },
    ):
        storages._storages.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        call_command("stowage", "sync", "default", f"staticfiles:{prefix}", "--jobs", str(jobs))
        result = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    storages._storages.clear()
    return result


def run(args: argparse.Namespace) -> Section:
    """Sync the same tree into fresh prefixes with 1, 8 and 32 jobs; return the section."""
    from bench import latency_s3

    count = 50 if args.quick else 10_000
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    for index in range(count):
        folder = work / "src" / f"d{index % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index}.txt").write_bytes(b"%d\n" % index * 100)
    (work / "logs").mkdir()
    server = latency_s3.start(work / "logs", LATENCY)
    serial = itertools.count()
    rows: list[Row] = []
    try:
        target = server.options("bench")

        def sync(jobs: int) -> Any:
            return lambda: _sync(work / "src", target, f"run{next(serial)}", jobs)

        for jobs in (8, 32):
            pair = paired(sync(jobs), sync(1), args.runs)
            row = timing_row(
                f"sync of {count:,} small files to an empty prefix, `--jobs {jobs}`",
                pair,
                by="wall",
                scale=1,
                unit="s",
            )
            rows.append(row)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return Section(
        "sync",
        TITLE,
        rows,
        header=("measure", "stowage, that many jobs", "stowage, `--jobs 1`"),
        notes=(
            "Each run copies the tree (50 directories, files of a few hundred bytes) into a "
            "fresh prefix of one bucket, so every file is copied and verified (the default "
            "`--verify checksum`: the MD5 of the bytes sent against the ETag). The bucket is "
            f"on an S3 endpoint that keeps every object and holds each answer "
            f"{LATENCY * 1e3:.0f} ms while it answers others (`bench/latency_s3.py`), as a "
            "service a network round trip away does. Against moto, which answers one request "
            "at a time in one Python process, these rows would time moto, not the jobs."
        ),
    )
