"""Async: 200 concurrent small asave() calls against the sync API through sync_to_async."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench._measure import Metrics, Section, paired, timing_row

__all__ = ["TITLE", "run"]

TITLE = "Async API (moto): asave() vs save() through sync_to_async"


def run(args: argparse.Namespace) -> Section:
    """Time 200 concurrent saves three ways on one event loop; return the section."""
    from asgiref.sync import sync_to_async
    from django.core.files.base import ContentFile

    from stowage import S3Storage
    from tests.faults.proxy import FaultProxy
    from tests.servers.moto import start_moto

    count = 20 if args.quick else 200
    server = start_moto(Path(tempfile.mkdtemp(prefix="bench-async-")))
    # moto on loopback answers in a few ms of its own CPU; a real service is a
    # network round trip away. The proxy adds 20 ms to every response.
    proxy = FaultProxy(int(server.endpoint.rsplit(":", 1)[1]), latency=0.02)
    try:
        options = server.options(server.create_bucket())
        storage = S3Storage(**{**options, "endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        body = b"x" * 1024

        async def native(round_: int) -> None:
            await asyncio.gather(
                *(storage.asave(f"n{round_}/{i}.txt", ContentFile(body)) for i in range(count))
            )

        async def wrapped(round_: int, sensitive: bool) -> None:
            save = sync_to_async(storage.save, thread_sensitive=sensitive)
            await asyncio.gather(
                *(save(f"w{sensitive}{round_}/{i}.txt", ContentFile(body)) for i in range(count))
            )

        serial = itertools.count()

        def once(make: Callable[[int], Coroutine[Any, Any, None]]) -> Callable[[], Metrics]:
            def run_once() -> Metrics:
                start = time.perf_counter()
                asyncio.run(make(next(serial)))
                return {"wall": time.perf_counter() - start, "cpu": 0.0}

            return run_once

        native_run = once(native)
        pairs = {
            "sync_to_async(save) (Django's default, thread_sensitive=True)": paired(
                native_run, once(lambda r: wrapped(r, True)), args.runs
            ),
            "sync_to_async(save, thread_sensitive=False)": paired(
                native_run, once(lambda r: wrapped(r, False)), args.runs
            ),
        }
    finally:
        proxy.close()
        server.stop()
    rows = []
    for label, pair in pairs.items():
        row = timing_row(label, pair, by="wall", scale=1, unit="s", digits=2)
        row.ours, row.theirs = pair[0]["wall"].show(1, "s", 2), pair[1]["wall"].show(1, "s", 2)
        rows.append(row)
    return Section(
        "async",
        TITLE,
        rows,
        header=(f"{count} concurrent 1 KiB saves, against", "asave()", "the sync API"),
        notes=(
            "One event loop per round, each save an atomic create on moto behind a "
            "proxy adding 20 ms to every response (a network round trip; on bare loopback moto's "
            "own CPU is the limit and concurrency gains nothing). "
            "Django's default sync_to_async runs every call on one thread, one after another; "
            "asave() awaits obstore's async client (the S3 driver is natively async)."
        ),
    )
