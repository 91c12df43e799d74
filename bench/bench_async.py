"""Async: 200 concurrent small asave() calls against the sync API through sync_to_async."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench._measure import ratio, section

TITLE = "Async API (moto): asave() vs save() through sync_to_async"


def run(args: argparse.Namespace) -> str:
    """Time 200 concurrent saves three ways on one event loop; return the section."""
    from asgiref.sync import sync_to_async
    from django.core.files.base import ContentFile

    from stowage import S3Storage
    from tests.faults.proxy import FaultProxy
    from tests.servers.moto import start_moto

    count = 200
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

        def timed(make: object) -> float:
            results = []
            for round_ in range(3):
                start = time.perf_counter()
                asyncio.run(make(round_))  # type: ignore[operator]
                results.append(time.perf_counter() - start)
            return statistics.median(results)

        t_native = timed(native)
        t_sensitive = timed(lambda r: wrapped(r, True))
        t_threads = timed(lambda r: wrapped(r, False))
    finally:
        proxy.close()
        server.stop()
    rows = [
        (
            "sync_to_async(save) (Django's default, thread_sensitive=True)",
            f"{t_native:.2f} s",
            f"{t_sensitive:.2f} s",
            ratio(t_sensitive, t_native),
        ),
        (
            "sync_to_async(save, thread_sensitive=False)",
            f"{t_native:.2f} s",
            f"{t_threads:.2f} s",
            ratio(t_threads, t_native),
        ),
    ]
    return section(
        "async",
        TITLE,
        rows,
        (f"{count} concurrent 1 KiB saves, against", "asave()", "the sync API", "ratio"),
        notes=(
            "One event loop, median of three rounds, each save an atomic create on moto behind a "
            "proxy adding 20 ms to every response (a network round trip; on bare loopback moto's "
            "own CPU is the limit and concurrency gains nothing). "
            "Django's default sync_to_async runs every call on one thread, one after another; "
            "asave() awaits obstore's async client (the S3 driver is natively async)."
        ),
    )
