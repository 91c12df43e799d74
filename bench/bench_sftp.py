"""SFTP: stowage against django-storages' SFTPStorage on the same sshd.

stowage runs asyncssh on its own event loop thread; django-storages runs
paramiko. Client CPU is ``time.process_time()`` of this process (every
thread); throughput is the payload divided by the wall time of one call.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._measure import Zeros, import_row, ratio, section, small_operations

TITLE = "SFTP (OpenSSH sshd): stowage vs django-storages SFTPStorage"
_MiB = 1024 * 1024


def _ours(server: Any, root: str) -> Any:
    from stowage import SFTPStorage

    return SFTPStorage(**server.options(root))


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


def _throughput(call: Callable[[], object], size: int, repeat: int) -> float:
    """Return the best MB/s of ``repeat`` calls that each move ``size`` bytes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6


def _read_all(storage: Any, name: str, size: int) -> None:
    with storage.open(name, "rb") as handle:
        assert len(handle.read()) == size


def _read_chunks(storage: Any, name: str, size: int) -> None:
    with storage.open(name, "rb") as handle:
        assert sum(len(chunk) for chunk in handle.chunks(chunk_size=_MiB)) == size


def run(args: argparse.Namespace) -> str:
    """Measure both clients on one sshd and return the Markdown section."""
    from django.core.files.base import ContentFile, File

    from tests.servers.sshd import start_sshd

    quick = args.quick
    server = start_sshd(Path(tempfile.mkdtemp(prefix="bench-sftp-")))
    rows: list[tuple[str, ...]] = []
    try:
        ours, theirs = _ours(server, server.new_root()), _theirs(server, server.new_root())
        size = (16 if quick else 100) * _MiB
        repeat = 2 if quick else 3
        counter = iter(range(10**9))
        storages = {"ours": ours, "theirs": theirs}

        def upload(storage: Any) -> Callable[[], object]:
            def call() -> object:
                name = f"up/{next(counter)}.bin"
                return storage.save(name, File(Zeros(size), name="zeros.bin"))  # type: ignore[arg-type]

            return call

        up = {which: _throughput(upload(s), size, repeat) for which, s in storages.items()}
        rows.append(
            (
                f"upload {size // _MiB} MiB: save() (MB/s)",
                f"{up['ours']:.0f} MB/s",
                f"{up['theirs']:.0f} MB/s",
                ratio(1 / up["theirs"], 1 / up["ours"]),
            )
        )
        for storage in storages.values():
            storage.save("big.bin", File(Zeros(size), name="zeros.bin"))  # type: ignore[arg-type]
        readers: dict[str, Callable[[Any, str, int], None]] = {
            "open().read()": _read_all,
            "chunks() of 1 MiB": _read_chunks,
        }
        for label, reader in readers.items():
            down = {
                which: _throughput(functools.partial(reader, s, "big.bin", size), size, repeat)
                for which, s in storages.items()
            }
            rows.append(
                (
                    f"download {size // _MiB} MiB: {label} (MB/s)",
                    f"{down['ours']:.0f} MB/s",
                    f"{down['theirs']:.0f} MB/s",
                    ratio(1 / down["theirs"], 1 / down["ours"]),
                )
            )
        for storage in (ours, theirs):
            storage.save("small.txt", ContentFile(b"x" * 1024))
        rows += small_operations(ours, theirs, reps=20 if quick else 100, by="wall")
        rows.append(import_row("stowage.drivers.sftp", "storages.backends.sftpstorage"))
        ours.close()
        theirs.close()
    finally:
        server.stop()
    return section(
        "sftp",
        TITLE,
        rows,
        ("measure", "stowage", "django-storages", "ratio"),
        notes=(
            f"Same sshd ({server.kind}) on loopback, one run, key login; best of {repeat} for "
            "throughput, median of five rounds for the per-call rows. stowage's save under a "
            "new name is an atomic create (a temporary file renamed into place, which fails "
            "when the name is taken); django-storages checks exists() and writes in place. "
            "django-storages reads a file with paramiko without read-ahead; stowage keeps "
            "reads in flight while the caller consumes the previous chunk."
        ),
    )
