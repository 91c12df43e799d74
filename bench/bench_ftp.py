"""FTP: stowage against django-storages' FTPStorage on the same pyftpdlib server.

Throughput is wall time of one large upload and one large download; small
operations are client CPU (``time.process_time()``) and wall time per call.
Both backends keep their control connection between calls.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._measure import Timing, Zeros, import_row, measure, ratio, section, small_operations

TITLE = "FTP (pyftpdlib): stowage vs django-storages FTPStorage"
_MiB = 1024 * 1024


def _ours(port: int, root: str) -> Any:
    from stowage import FTPStorage
    from tests.servers.ftpd import PASSWORD, USER

    return FTPStorage(
        host="127.0.0.1", port=port, username=USER, password=PASSWORD, root_path=f"/{root}"
    )


def _theirs(port: int, root: str) -> Any:
    from storages.backends.ftp import FTPStorage

    from tests.servers.ftpd import PASSWORD, USER

    return FTPStorage(location=f"ftp://{USER}:{PASSWORD}@127.0.0.1:{port}/{root}/")


def _drain(handle: Any) -> int:
    total = 0
    while chunk := handle.read(_MiB):
        total += len(chunk)
    return total


def run(args: argparse.Namespace) -> str:
    """Measure both backends on one pyftpdlib server and return the Markdown section."""
    from django.core.files.base import ContentFile, File

    from tests.servers.ftpd import start_ftpd

    quick = args.quick
    workdir = Path(tempfile.mkdtemp(prefix="bench-ftp-"))
    home = workdir / "home"
    server = start_ftpd(workdir, home)
    rows: list[tuple[str, ...]] = []
    try:
        for root in ("ours", "theirs"):
            (home / root).mkdir(parents=True)
        ours, theirs = _ours(server.port, "ours"), _theirs(server.port, "theirs")

        big = (20 if quick else 100) * _MiB

        def upload(storage: Any) -> float:
            start = time.perf_counter()
            name = storage.save("up.bin", File(Zeros(big), name="big.bin"))
            elapsed = time.perf_counter() - start
            storage.delete(name)
            return elapsed

        ours.save("big.bin", File(Zeros(big), name="big.bin"))
        theirs.save("big.bin", File(Zeros(big), name="big.bin"))
        # Alternate the two so that disk and page-cache state is the same for both.
        pairs = [(upload(ours), upload(theirs)) for _ in range(5)]
        up_ours = Timing(statistics.median(p[0] for p in pairs), 0.0)
        up_theirs = Timing(statistics.median(p[1] for p in pairs), 0.0)
        rows.append(
            (
                f"upload {big // _MiB} MiB: throughput (wall)",
                f"{big / _MiB / up_ours.wall:.0f} MiB/s ({up_ours.wall:.2f} s)",
                f"{big / _MiB / up_theirs.wall:.0f} MiB/s ({up_theirs.wall:.2f} s)",
                ratio(up_theirs.wall, up_ours.wall),
            )
        )

        def read_ours() -> None:
            with ours.open("big.bin", "rb") as handle:
                assert _drain(handle) == big

        def read_theirs() -> None:
            with theirs.open("big.bin", "rb") as handle:
                assert len(handle.read()) == big

        down_ours = measure(read_ours, repeat=3)
        down_theirs = measure(read_theirs, repeat=3)
        rows.append(
            (
                f"download {big // _MiB} MiB: throughput (wall)",
                f"{big / _MiB / down_ours.wall:.0f} MiB/s ({down_ours.wall:.2f} s)",
                f"{big / _MiB / down_theirs.wall:.0f} MiB/s ({down_theirs.wall:.2f} s)",
                ratio(down_theirs.wall, down_ours.wall),
            )
        )

        def first_64k(storage: Any) -> None:
            with storage.open("big.bin", "rb") as handle:
                assert len(handle.read(64 * 1024)) == 64 * 1024

        head_ours = measure(lambda: first_64k(ours), repeat=3)
        head_theirs = measure(lambda: first_64k(theirs), repeat=3)
        rows.append(
            (
                f"first 64 KiB of the {big // _MiB} MiB file (wall)",
                f"{head_ours.wall * 1e3:.1f} ms",
                f"{head_theirs.wall * 1e3:.0f} ms",
                ratio(head_theirs.wall, head_ours.wall),
            )
        )

        ours.save("small.txt", ContentFile(b"x" * 1024))
        theirs.save("small.txt", ContentFile(b"x" * 1024))
        rows += small_operations(ours, theirs, reps=20 if quick else 100)
        rows.append(import_row("stowage.drivers.ftp", "storages.backends.ftp"))
        ours.close()
    finally:
        server.stop()
    return section(
        "ftp",
        TITLE,
        rows,
        ("measure", "stowage", "django-storages", "ratio"),
        notes=(
            "Same pyftpdlib server on loopback, one run; throughput ratios are of wall time, "
            "per-call ratios of client CPU. stowage "
            "streams uploads from the source in 256 KiB chunks to a temporary name and renames "
            "it into place, and reads ranges with REST; django-storages reads a whole file "
            "into memory on open and writes straight to the final name. FTP has no atomic "
            "create: stowage checks a new name, then checks again just before the rename; "
            "django-storages checks once."
        ),
    )
