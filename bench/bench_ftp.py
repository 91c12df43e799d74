"""FTP: stowage against django-storages' FTPStorage on the same pyftpdlib server.

Throughput is the wall time of one large upload or download; small
operations are client CPU (``time.process_time()``) per call. Both backends
keep their control connection between calls; django-storages runs with its
defaults.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench._measure import (
    Row,
    Section,
    Zeros,
    import_costs,
    import_row,
    paired,
    small_operations,
    timed,
    timing_row,
)

__all__ = ["TITLE", "run"]

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


def _bare_store(port: int, size: int) -> Any:
    """Return a call storing ``size`` bytes with one bare ftplib STOR, then deleting them.

    The floor of the upload row: the server receiving the bytes, with no
    name checked and no rename, as neither library can send less.
    """
    import ftplib

    from tests.servers.ftpd import PASSWORD, USER

    client = ftplib.FTP()
    client.connect("127.0.0.1", port)
    client.login(USER, PASSWORD)
    client.voidcmd("TYPE I")
    serial = itertools.count()

    def call() -> None:
        name = f"/bare/up{next(serial)}.bin"
        client.storbinary(f"STOR {name}", Zeros(size), 64 * 1024)
        client.delete(name)

    return call


def run(args: argparse.Namespace) -> Section:
    """Measure both backends on one pyftpdlib server and return the section."""
    from django.core.files.base import ContentFile, File

    from tests.servers.ftpd import start_ftpd

    quick, runs = args.quick, args.runs
    workdir = Path(tempfile.mkdtemp(prefix="bench-ftp-"))
    home = workdir / "home"
    server = start_ftpd(workdir, home)
    rows: list[Row] = []
    try:
        for root in ("ours", "theirs", "bare"):
            (home / root).mkdir(parents=True)
        ours, theirs = _ours(server.port, "ours"), _theirs(server.port, "theirs")
        big = (4 if quick else 100) * _MiB
        transfers = 1 if quick else 16
        size = f"{big // _MiB} MiB"
        serial = itertools.count()

        def upload(storage: Any) -> Any:
            def call() -> None:
                storage.delete(storage.save(f"up{next(serial)}.bin", File(Zeros(big), name="b")))

            return call

        def read_ours() -> None:
            with ours.open("big.bin", "rb") as handle:
                assert _drain(handle) == big

        def read_theirs() -> None:
            with theirs.open("big.bin", "rb") as handle:
                assert len(handle.read()) == big

        def first_64k(storage: Any) -> Any:
            def call() -> None:
                with storage.open("big.bin", "rb") as handle:
                    assert len(handle.read(64 * 1024)) == 64 * 1024

            return call

        ours.save("big.bin", File(Zeros(big), name="big.bin"))
        theirs.save("big.bin", File(Zeros(big), name="big.bin"))
        for label, mine, other in (
            (f"upload {size}", upload(ours), upload(theirs)),
            (f"download {size}", read_ours, read_theirs),
            (f"first 64 KiB of the {size} file", first_64k(ours), first_64k(theirs)),
        ):
            # Each run times several transfers: one of 100 MiB lasts a few dozen
            # milliseconds, and the same upload's time varies by a third from one
            # transfer to the next here (the server's and the client's scheduling).
            pair = paired(timed(mine, transfers), timed(other, transfers), runs)
            rows.append(timing_row(label, pair, by="wall", digits=1))
        bare_store = _bare_store(server.port, big)
        ours_again, bare = paired(
            timed(upload(ours), transfers), timed(bare_store, transfers), runs
        )

        ours.save("small.txt", ContentFile(b"x" * 1024))
        theirs.save("small.txt", ContentFile(b"x" * 1024))
        rows += small_operations(ours, theirs, runs=runs, number=5 if quick else 100)
        rows.append(import_row("stowage.drivers.ftp", "storages.backends.ftp", runs=runs))
        floor = import_costs(["stowage", "ftplib"], runs)
        ours.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return Section(
        "ftp",
        TITLE,
        rows,
        notes=(
            "Same pyftpdlib server on loopback; transfer ratios are of wall time (a run's "
            f"figure is the mean of {transfers} transfers), per-call ratios of client CPU. "
            "stowage streams uploads from the source in 256 KiB chunks "
            "to a temporary name and renames it into place, and reads ranges with REST; "
            "django-storages reads a whole file into memory on open and writes straight to "
            "the final name. FTP has no atomic create: stowage checks a new name, then checks "
            "again just before the rename; django-storages checks once. "
            f"The upload's floor is the server receiving the bytes: a bare ftplib STOR of the "
            f"same {size} (64 KiB blocks, no name checked, no rename) took "
            f"{bare['wall'].show(1e3, 'ms')} in a second alternating run, in which stowage's "
            f"save took {ours_again['wall'].show(1e3, 'ms')}. "
            f"Of stowage's import, its adapter alone (`import stowage`, shared by every "
            f"backend) takes {floor['stowage'] * 1e3:.1f} ms here and ftplib "
            f"{floor['ftplib'] * 1e3:.1f} ms; django-storages' FTP backend is one module on "
            "Django's own Storage class. No backend built on stowage's adapter imports in "
            "less than the adapter: an adapter that loads its parts at first use would."
        ),
    )
