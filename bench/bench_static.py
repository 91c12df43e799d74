"""collectstatic: stowage's ManifestStaticStorage against django-storages' on one moto server.

Django's stock collectstatic command runs in this process against each
storage in turn, on the same generated tree of static files: a first run
into an empty bucket, then a no-op re-run with nothing changed.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._measure import Metrics, Row, Section, Spread, paired, timing_row

__all__ = ["TITLE", "run"]

TITLE = "collectstatic (moto): stowage's ManifestStaticStorage, growing trees"


def _make_tree(root: Path, count: int) -> None:
    """Write ``count`` small static files: styles referencing images, scripts, images."""
    for index in range(count):
        folder = root / f"app{index % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = index % 4
        if kind == 0:
            (folder / f"style{index}.css").write_text(
                f'.c{index} {{ background: url("../app{(index + 1) % 20}/img{index + 1}.png"); }}\n'
                * 20
            )
        elif kind == 1:
            (folder / f"img{index}.png").write_bytes(b"\x89PNG" + bytes([index % 256]) * 2048)
        else:
            (folder / f"script{index}.js").write_text(f"console.log({index});\n" * 40)


def _collect(backend: str, options: dict[str, Any], sources: Path) -> float:
    """Run Django's collectstatic into one storage; return its wall seconds."""
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.files.storage import storages
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(
        STATICFILES_DIRS=[str(sources)],
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "staticfiles": {"BACKEND": backend, "OPTIONS": options},
        },
    ):
        storages._storages.pop("staticfiles", None)
        staticfiles_storage._setup()
        start = time.perf_counter()
        call_command("collectstatic", interactive=False, verbosity=0)
        flush = getattr(staticfiles_storage._wrapped, "flush", None)
        if flush is not None:
            flush()
        return time.perf_counter() - start


#: What a destination maker returns: the backend, its options, and how to drop it.
Destination = tuple[str, dict[str, Any], Callable[[], None]]


def _first_and_noop(make: Callable[[], Destination], sources: Path) -> Metrics:
    """Collect into a fresh destination, then again with nothing changed; then drop it."""
    backend, options, drop = make()
    figures = {
        "first": _collect(backend, options, sources),
        "noop": _collect(backend, options, sources),
    }
    drop()
    return figures


def _moto_floor(server: Any, sources: Path, runs: int) -> dict[str, float]:
    """Return what stowage's collect asks of moto, and moto's own time for it.

    One collect into a fresh bucket gives the objects stored; then, through
    one client, the median time of a bare PUT of one of those objects and of
    one bare listing of the whole bucket. moto serves its requests in one
    Python process, so the first run cannot take less than the objects times
    a PUT, nor a no-op re-run (which lists the bucket once) less than the
    listing.
    """
    import statistics

    from stowage import S3Storage

    bucket = server.create_bucket()
    options = {"driver": "s3", **server.options(bucket)}
    _collect("stowage.ManifestStaticStorage", options, sources)
    storage = S3Storage(**server.options(bucket))
    rest = storage.driver.rest
    body = next(path for path in sorted(sources.rglob("*.css"))).read_bytes()
    objects = sum(1 for _ in storage.driver.list("", recursive=True))

    def listing() -> None:
        assert sum(1 for _ in storage.driver.list("", recursive=True)) == objects

    def put() -> None:
        rest.call("PUT", "floor/probe.css", body=body, what="a bare PUT")

    def median(call: Callable[[], None], number: int) -> float:
        def once() -> float:
            start = time.perf_counter()
            for _ in range(number):
                call()
            return (time.perf_counter() - start) / number

        return statistics.median(once() for _ in range(runs))

    figures = {"objects": float(objects), "listing": median(listing, 1)}
    figures["put"] = median(put, 50)  # after the listing, which counts only the collect's
    storage.close()
    _drop_bucket(server, bucket)
    return figures


def _drop_bucket(server: Any, bucket: str) -> None:
    """Delete ``bucket`` and everything in it: moto slows down as it holds more objects."""
    client = server.boto3()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def run(args: argparse.Namespace) -> Section:
    """Run collectstatic twice per destination for each tree size; return the section."""
    from tests.servers.moto import start_moto

    runs = args.runs
    # django-storages takes over a minute per 1,000 files on moto, each run: at
    # 20,000 files five runs would take hours, so there Django's own
    # ManifestStaticFilesStorage on local disk is the peer.
    sizes = (
        [(20, True), (50, False)] if args.quick else [(200, True), (2_000, True), (20_000, False)]
    )
    work = Path(tempfile.mkdtemp(prefix="bench-static-"))
    (work / "logs").mkdir()
    server = start_moto(work / "logs")
    rows: list[Row] = []
    counter = itertools.count()
    try:

        def ours() -> Destination:
            bucket = server.create_bucket()
            options = {"driver": "s3", **server.options(bucket)}
            return "stowage.ManifestStaticStorage", options, lambda: _drop_bucket(server, bucket)

        def theirs() -> Destination:
            name = server.create_bucket()
            bucket = server.options(name)
            options = {
                key: bucket[key]
                for key in (
                    "bucket_name",
                    "endpoint_url",
                    "access_key",
                    "secret_key",
                    "region_name",
                )
            }
            return (
                "storages.backends.s3.S3ManifestStaticStorage",
                options,
                lambda: _drop_bucket(server, name),
            )

        def local() -> Destination:
            target = work / f"local-{next(counter)}"
            return (
                "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
                {"location": str(target)},
                lambda: shutil.rmtree(target, ignore_errors=True),
            )

        def ours_local() -> Destination:
            target = work / f"local-{next(counter)}"
            return (
                "stowage.ManifestStaticStorage",
                {"driver": "local", "location": str(target)},
                lambda: shutil.rmtree(target, ignore_errors=True),
            )

        floors: list[str] = []

        for count, with_theirs in sizes:
            sources = work / f"src-{count}"
            _make_tree(sources, count)
            peer = theirs if with_theirs else local
            peer_name = (
                "django-storages S3ManifestStaticStorage (its defaults)"
                if with_theirs
                else "Django's ManifestStaticFilesStorage on local disk"
            )
            pair = paired(
                lambda sources=sources: _first_and_noop(ours, sources),
                lambda sources=sources, peer=peer: _first_and_noop(peer, sources),
                runs,
            )
            rows += _rows(pair, f"{count:,} files, against {peer_name}", with_theirs)
            if not with_theirs:
                on_disk = pair[1]["first"].median, pair[1]["noop"].median
                # The same work on the same disk: stowage's storage on its local driver.
                pair = paired(
                    lambda sources=sources: _first_and_noop(ours_local, sources),
                    lambda sources=sources: _first_and_noop(local, sources),
                    runs,
                )
                label = f"{count:,} files, both on local disk (stowage with `driver='local'`)"
                rows += _rows(pair, label, False)
                floor = _moto_floor(server, sources, runs)
                floors.append(
                    f"At {count:,} files stowage stores {floor['objects']:,.0f} objects on "
                    f"moto, and one bare PUT of a stylesheet there takes "
                    f"{floor['put'] * 1e3:.1f} ms through one client: "
                    f"{floor['objects'] * floor['put']:.1f} s for them all, one after another, "
                    f"so against Django's {on_disk[0]:.1f} s on local disk the first run can "
                    f"reach about {on_disk[0] / (floor['objects'] * floor['put']):.2f}× on this "
                    "server. stowage sends them on 8 threads, which passes that figure only as "
                    "far as moto, one Python process, answers requests side by side; a service "
                    "that answers them in parallel, as S3 does, is what goes past it. "
                    f"A bare listing of those objects takes {floor['listing']:.1f} s, the "
                    "least a no-op re-run that checks the bucket can take: at most "
                    f"{on_disk[1] / floor['listing']:.2f}× against Django's {on_disk[1]:.1f} s "
                    f"(medians of {runs})."
                )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return Section(
        "static",
        TITLE,
        rows,
        header=("measure", "stowage", "the peer named in the measure"),
        notes=(
            "Django's stock `collectstatic`, in-process, same generated trees (a quarter "
            "stylesheets referencing images), same moto server, a fresh bucket per run. stowage "
            "lists the bucket once, skips unchanged files by content hash and uploads on 8 "
            "threads, and skips Django's hashing passes when no collected file changed since "
            "the stored manifest; django-storages asks the service per file. Each destination "
            "is deleted after its run, untimed: moto answers more slowly the more objects it "
            "holds. At 20,000 files django-storages is not run (about 25 minutes per collect on "
            "moto, so hours for five runs): the peer there is Django's own storage writing to "
            "local disk, which pays no network at all, and the rows on local disk compare the "
            "same work on both sides. "
        )
        + " ".join(floors),
    )


def _rows(
    pair: tuple[dict[str, Spread], dict[str, Spread]], label: str, with_theirs: bool
) -> list[Row]:
    """Return the first-run and no-op rows of one pairing."""
    rows = []
    for key, what, goal in (
        ("first", "first run", "static-first" if with_theirs else "parity"),
        ("noop", "no-op re-run", "static-noop" if with_theirs else "parity"),
    ):
        row = timing_row(
            f"{what}, {label}",
            (
                {"wall": pair[0][key], "cpu": pair[0][key]},
                {"wall": pair[1][key], "cpu": pair[1][key]},
            ),
            by="wall",
            goal=goal,
            scale=1,
            unit="s",
        )
        row.ours = pair[0][key].show(1, "s", 2)
        row.theirs = pair[1][key].show(1, "s", 2)
        rows.append(row)
    return rows
