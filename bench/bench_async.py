"""Async: many concurrent small asave() calls against the sync API through sync_to_async."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench._measure import Metrics, Section, Spread, paired, timing_row

__all__ = ["TITLE", "run"]

TITLE = "Async API (S3): asave() vs save() through sync_to_async"

#: What every response waits, standing for the network round trip to a service.
LATENCY = 0.02

_Pair = tuple[dict[str, Spread], dict[str, Spread]]


def _pairs(storage: Any, counts: tuple[int, ...], runs: int, sensitive: bool) -> dict[int, _Pair]:
    """Time ``count`` concurrent asave() against as many wrapped save() calls, per count."""
    from asgiref.sync import sync_to_async
    from django.core.files.base import ContentFile

    body = b"x" * 1024
    serial = itertools.count()

    async def native(count: int) -> None:
        prefix = f"n{next(serial)}"
        await asyncio.gather(
            *(storage.asave(f"{prefix}/{i}.txt", ContentFile(body)) for i in range(count))
        )

    async def wrapped(count: int) -> None:
        prefix = f"w{next(serial)}"
        save = sync_to_async(storage.save, thread_sensitive=sensitive)
        await asyncio.gather(*(save(f"{prefix}/{i}.txt", ContentFile(body)) for i in range(count)))

    def once(make: Callable[[int], Coroutine[Any, Any, None]], count: int) -> Callable[[], Metrics]:
        def run_once() -> Metrics:
            start, cpu = time.perf_counter(), time.process_time()
            asyncio.run(make(count))
            return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}

        return run_once

    return {count: paired(once(native, count), once(wrapped, count), runs) for count in counts}


def _moto_floor(runs: int, count: int) -> str:
    """Measure the same saves against moto, and how long moto takes per save; describe it."""
    from django.core.files.base import ContentFile

    from stowage import S3Storage
    from tests.faults.proxy import FaultProxy
    from tests.servers.moto import start_moto

    logs = Path(tempfile.mkdtemp(prefix="bench-async-moto-"))
    server = start_moto(logs)
    proxy = FaultProxy(int(server.endpoint.rsplit(":", 1)[1]), latency=LATENCY)
    try:
        options = server.options(server.create_bucket())
        direct = S3Storage(**options)
        started = time.perf_counter()
        for i in range(count):
            direct.save(f"serial/{i}.txt", ContentFile(b"x" * 1024))
        per_save = (time.perf_counter() - started) / count
        slow = S3Storage(**{**options, "endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        ours, theirs = _pairs(slow, (count,), runs, sensitive=False)[count]
    finally:
        proxy.close()
        server.stop()
        shutil.rmtree(logs, ignore_errors=True)
    native, pool = ours["wall"].median, theirs["wall"].median
    return (
        f"Against moto behind a proxy adding the same {LATENCY * 1e3:.0f} ms, {count} saves "
        f"take {native:.2f} s natively and {pool:.2f} s through the thread pool "
        f"(medians of {runs}): moto serves one request at a time in Python, and one save "
        f"after another takes {per_save * 1e3:.1f} ms there without the proxy, so "
        f"{count} saves need about {count * per_save:.2f} s however they are sent. That is "
        "the server's floor, not the client's, and why these rows use a server that answers "
        "concurrently."
    )


def run(args: argparse.Namespace) -> Section:
    """Time concurrent saves natively and through sync_to_async; return the section."""
    from django.core.files.base import ContentFile

    from bench import latency_s3
    from stowage import S3Storage

    small, large = (20, 50) if args.quick else (200, 1_000)
    latency_s3.allow_open_files()
    logs = Path(tempfile.mkdtemp(prefix="bench-async-"))
    server = latency_s3.start(logs, LATENCY)
    try:
        storage = S3Storage(**server.options("bench"))
        # The first save probes conditional writes, once per process: not timed.
        storage.delete(storage.save("warm.txt", ContentFile(b"x")))
        pool = _pairs(storage, (small, large), args.runs, sensitive=False)
        default = _pairs(storage, (small,), args.runs, sensitive=True)
    finally:
        server.stop()
        shutil.rmtree(logs, ignore_errors=True)
    floor = _moto_floor(args.runs, small)

    def row(count: int, against: str, pair: _Pair, goal: str) -> Any:
        made = timing_row(f"{count:,} saves, against {against}", pair, by="wall", goal=goal)
        made.ours, made.theirs = (side["wall"].show(1, "s", 2) for side in pair)
        return made

    threads = "sync_to_async(save, thread_sensitive=False)"
    django_default = "sync_to_async(save) (Django's default, thread_sensitive=True)"
    rows = [
        row(small, django_default, default[small], "parity"),
        row(small, threads, pool[small], "async-threads"),
        row(large, threads, pool[large], "async-threads"),
    ]
    cpu = pool[large][0]["cpu"].median
    return Section(
        "async",
        TITLE,
        rows,
        header=("concurrent 1 KiB saves", "asave()", "the sync API"),
        notes=(
            f"One event loop per round, each save an atomic create (`If-None-Match: *`) on an "
            f"S3 endpoint that holds every response {LATENCY * 1e3:.0f} ms and answers many "
            "at once, as a service a network round trip away does (`bench/latency_s3.py`). "
            "Django's default sync_to_async runs every call on one thread, one after another; "
            "with thread_sensitive=False the calls share the loop's default thread pool "
            f"(min(32, CPUs + 4) threads). asave() awaits obstore's async client (the S3 driver "
            f"is natively async); {large:,} of them cost {cpu:.2f} s of client CPU here. " + floor
        ),
    )
