"""SFTP: stowage against django-storages' SFTPStorage on the same sshd.

stowage runs asyncssh by default, and OpenSSH's ssh program in the rows
marked client='openssh'; django-storages runs paramiko. Client CPU is
``time.process_time()`` of this process (every thread); throughput is the
payload divided by the wall time of one call. django-storages runs with its
defaults.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._measure import (
    Row,
    Section,
    Spread,
    Zeros,
    import_costs,
    import_row,
    paired,
    small_operations,
    timed,
    timing_row,
)

__all__ = ["TITLE", "run"]

TITLE = "SFTP (OpenSSH sshd): stowage vs django-storages SFTPStorage"
_MiB = 1024 * 1024


def _ours(server: Any, root: str, client: str = "asyncssh") -> Any:
    from stowage import SFTPStorage

    return SFTPStorage(**server.options(root), client=client)


def _theirs(server: Any, root: str) -> Any:
    from storages.backends.sftpstorage import SFTPStorage  # type: ignore[import-untyped]

    return SFTPStorage(
        host="127.0.0.1",
        params={
            "port": server.port,
            "username": server.username,
            "key_filename": str(server.key_path),
            "look_for_keys": False,
            "allow_agent": False,
        },
        known_host_file=str(server.known_hosts),
        root_path=root,
    )


def _read_all(storage: Any, name: str, size: int) -> None:
    with storage.open(name, "rb") as handle:
        assert len(handle.read()) == size


def _read_chunks(storage: Any, name: str, size: int) -> None:
    with storage.open(name, "rb") as handle:
        assert sum(len(chunk) for chunk in handle.chunks(chunk_size=_MiB)) == size


def _liboqs_search(runs: int) -> float:
    """Return the seconds asyncssh's import spends looking for liboqs (median of ``runs``).

    asyncssh asks ``ctypes.util.find_library`` for "oqs" and then "liboqs" when
    it is imported; on Linux each call runs ldconfig, then gcc and ld when
    the library is not installed. Nothing caches the answer, so each run
    repeats the search as an import would.
    """
    import ctypes.util
    import statistics
    import time

    def search() -> float:
        start = time.perf_counter()
        for name in ("oqs", "liboqs"):
            ctypes.util.find_library(name)
        return time.perf_counter() - start

    return statistics.median(search() for _ in range(runs))


def _stat_floor(ours: Any, theirs: Any, runs: int, number: int) -> dict[str, float]:
    """Time bare stat() calls (ms): asyncssh as stowage sends it, paramiko, and their exists().

    stowage's blocking calls run its event loop on the calling thread, so the
    bare asyncssh stat() is run the same way.
    """
    connection = ours.driver._connection
    runner = connection.loop()
    ours.exists("small.txt")  # connected
    sftp = connection.link.usable()
    path = ours.driver._path("small.txt")
    bare = paired(
        timed(lambda: runner.run(sftp.stat(path)), number),
        timed(lambda: theirs.sftp.stat(theirs._remote_path("small.txt")), number),
        runs,
    )
    against = paired(
        timed(lambda: runner.run(sftp.stat(path)), number),
        timed(lambda: theirs.exists("small.txt"), number),
        runs,
    )
    return {
        "asyncssh": bare[0]["wall"].median * 1e3,
        "paramiko": bare[1]["wall"].median * 1e3,
        "asyncssh_again": against[0]["wall"].median * 1e3,
        "exists": against[1]["wall"].median * 1e3,
    }


def run(args: argparse.Namespace) -> Section:
    """Measure both clients on one sshd and return the section."""
    from django.core.files.base import ContentFile, File

    from tests.servers.sshd import start_sshd

    quick, runs = args.quick, args.runs
    data = Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    server = start_sshd(data)
    rows: list[Row] = []
    try:
        ours, theirs = _ours(server, server.new_root()), _theirs(server, server.new_root())
        # The design past asyncssh's floor: OpenSSH's ssh program, speaking SFTP over pipes.
        openssh = _ours(server, server.new_root(), client="openssh")
        on_ssh = ", client='openssh'"
        size = (4 if quick else 100) * _MiB
        counter = itertools.count()

        def upload(storage: Any) -> Callable[[], object]:
            def call() -> object:
                # Deleted in the run, as in the FTP section: 100 MiB files piling up
                # on the server's disk would time its writeback, not the clients.
                name = f"up/{next(counter)}.bin"
                return storage.delete(storage.save(name, File(Zeros(size), name="zeros.bin")))  # type: ignore[arg-type]

            return call

        def mb_per_s(side: dict[str, Spread]) -> str:
            fastest, slowest = size / side["wall"].low / 1e6, size / side["wall"].high / 1e6
            return (
                f"{size / side['wall'].median / 1e6:,.0f} MB/s ({slowest:,.0f}\u2013{fastest:,.0f})"
            )

        def transfer_row(label: str, mine: Callable[[], Any], other: Callable[[], Any]) -> Row:
            mine(), other()  # connections open and windows grown before timing
            pair = paired(timed(mine), timed(other), runs)
            row = timing_row(label, pair, by="wall", scale=1, unit="s", digits=2)
            row.ours, row.theirs = mb_per_s(pair[0]), mb_per_s(pair[1])
            return row

        label = f"upload {size // _MiB} MiB: save()"
        rows.append(transfer_row(label, upload(ours), upload(theirs)))
        rows.append(transfer_row(label + on_ssh, upload(openssh), upload(theirs)))
        for storage in (ours, theirs, openssh):
            storage.save("big.bin", File(Zeros(size), name="zeros.bin"))  # type: ignore[arg-type]
        readers: dict[str, Callable[[Any, str, int], None]] = {
            "open().read()": _read_all,
            "chunks() of 1 MiB": _read_chunks,
        }
        for label, reader in readers.items():
            for mine, suffix in ((ours, ""), (openssh, on_ssh)):
                rows.append(
                    transfer_row(
                        f"download {size // _MiB} MiB: {label}{suffix}",
                        functools.partial(reader, mine, "big.bin", size),
                        functools.partial(reader, theirs, "big.bin", size),
                    )
                )
        for storage in (ours, theirs, openssh):
            storage.save("small.txt", ContentFile(b"x" * 1024))
        # Wall time per call, a quarter of a millisecond: 1,000 calls make each run last
        # long enough that one pause of the scheduler does not set its figure.
        number = 5 if quick else 1000
        rows += small_operations(ours, theirs, runs=runs, number=number, by="wall")
        rows += small_operations(
            openssh, theirs, runs=runs, number=number, by="wall", suffix=on_ssh
        )
        stat = _stat_floor(ours, theirs, runs, number=number)
        rows.append(import_row("stowage.drivers.sftp", "storages.backends.sftpstorage", runs=runs))
        rows.append(
            import_row(
                "stowage.drivers.sftp, asyncssh",
                "storages.backends.sftpstorage",
                runs=runs,
                label="cold import with the client library (stowage loads it on first connection)",
            )
        )
        rows.append(
            import_row(
                "stowage.drivers.sftp",
                "storages.backends.sftpstorage",
                runs=runs,
                label="cold import with the client library, client='openssh' (ssh is a "
                "program: nothing more is imported)",
            )
        )
        floor = import_costs(["asyncssh", "paramiko"], runs)
        floor["liboqs"] = _liboqs_search(runs)
        ours.close()
        theirs.close()
        openssh.close()
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return Section(
        "sftp",
        TITLE,
        rows,
        notes=(
            f"Same sshd ({server.kind}) on loopback, key login; django-storages with its "
            "defaults. Transfer rows give throughput, the median with the slowest and fastest "
            "run, and compare wall time; the per-call rows compare wall time too, each run "
            f"timing {number:,} calls. Each "
            "upload is deleted again in its run, on both sides: 100 MiB files piling up on "
            "the server's disk would time its writeback, not the clients. stowage's "
            "save under a new name is an atomic create (a temporary file renamed into place, "
            "which fails when the name is taken); django-storages checks exists() and writes "
            "in place. django-storages reads a file with paramiko without read-ahead; stowage "
            "keeps reads in flight while the caller consumes the previous chunk. "
            "Declaring a stowage storage does not import asyncssh; the first connection does, "
            "as the GCS backend loads google-auth at the first request. Importing "
            f"asyncssh alone takes {floor['asyncssh'] * 1e3:.0f} ms here and paramiko "
            f"{floor['paramiko'] * 1e3:.0f} ms: the floor of the row with the client library. "
            f"{_without_liboqs(floor)} "
            "A blocking call runs stowage's event loop on the calling thread while it "
            "waits, so a request and its answer cross no thread; a thread of stowage's "
            "runs the loop only while no caller does (async calls, reads ahead, "
            "keep-alives). One bare stat() through asyncssh, run that way, takes "
            f"{stat['asyncssh']:.3f} ms here and paramiko's {stat['paramiko']:.3f} ms "
            f"(medians of {runs}).{_exists_floor(rows, stat, runs)}"
        ),
    )


def _without_liboqs(floor: dict[str, float]) -> str:
    """Say what asyncssh's import costs without its search for liboqs, against paramiko's."""
    search, rest = floor["liboqs"], floor["asyncssh"] - floor["liboqs"]
    text = (
        f"Of asyncssh's import, {search * 1e3:.0f} ms is its search for liboqs "
        "(`ctypes.util.find_library`, which runs ldconfig, gcc and ld on a machine without "
        f"it); the rest takes {rest * 1e3:.0f} ms, "
    )
    if rest > floor["paramiko"]:
        return text + (
            "more than paramiko alone: no driver on asyncssh passes this row. The client "
            "that goes past it is OpenSSH's own ssh program speaking SFTP over its pipes, "
            "which imports nothing beyond the standard library: the rows marked "
            "client='openssh'."
        )
    return text + (
        "less than paramiko: asyncssh searching at its first key exchange instead of at "
        "import (a change to asyncssh) would bring the row within reach."
    )


def _exists_floor(rows: list[Row], stat: dict[str, float], runs: int) -> str:
    """Give the floor of the exists() row when it misses its goal (nothing when it meets it)."""
    exists = next(row for row in rows if row.label.startswith("exists"))
    if exists.judged()["met"]:
        return ""
    return (
        f" The floor of the exists() row: in another alternating run, a bare stat() took "
        f"{stat['asyncssh_again']:.3f} ms against {stat['exists']:.3f} ms for "
        "django-storages' exists(), so exists() on asyncssh can reach at most "
        f"{stat['exists'] / stat['asyncssh_again']:.2f}× (medians of {runs}). The rows "
        "marked client='openssh' are the design past that floor: the same requests through "
        "OpenSSH's ssh program."
    )
