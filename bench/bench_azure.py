"""Azure: stowage against django-storages' AzureStorage on the same Azurite.

Client CPU is ``time.process_time()`` of this process; peak memory is measured
in a fresh child process per case, as for S3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._measure import Zeros, import_row, measure, ratio, section, small_operations

TITLE = "Azure Blob Storage (Azurite): stowage vs django-storages AzureStorage"
_MiB = 1024 * 1024


def _connection(endpoint: str) -> str:
    from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY

    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint};"
    )


def _ours(endpoint: str, container: str) -> Any:
    from stowage import AzureStorage

    return AzureStorage(connection_string=_connection(endpoint), azure_container=container)


def _theirs(endpoint: str, container: str) -> Any:
    from storages.backends.azure_storage import AzureStorage

    return AzureStorage(connection_string=_connection(endpoint), azure_container=container)


def _child(case: str, which: str, endpoint: str, container: str, size: int) -> None:
    """Run one memory case in this (fresh) process and print its figures as JSON."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.files.base import File

    from bench._measure import peak_rss_mib

    storage = (_ours if which == "stowage" else _theirs)(endpoint, container)
    start = time.perf_counter()
    if case == "baseline":
        pass
    elif case == "first64k":
        with storage.open("big.bin", "rb") as handle:
            assert len(handle.read(64 * 1024)) == 64 * 1024
    elif case == "upload":
        storage.save(f"upload-{which}.bin", File(Zeros(size), name="upload.bin"))
    print(json.dumps({"seconds": time.perf_counter() - start, "rss": peak_rss_mib()}))


def _run_child(case: str, which: str, endpoint: str, container: str, size: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_azure",
            "--child",
            case,
            which,
            endpoint,
            container,
            str(size),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(args: argparse.Namespace) -> str:
    """Measure both clients on one Azurite and return the Markdown section."""
    from django.core.files.base import ContentFile

    from tests.servers.azurite import start_azurite

    quick = args.quick
    server = start_azurite(Path(tempfile.mkdtemp(prefix="bench-azure-")))
    rows: list[tuple[str, ...]] = []
    try:
        container = server.create_container()
        ours, theirs = _ours(server.endpoint, container), _theirs(server.endpoint, container)
        ours.save("small.txt", ContentFile(b"x" * 1024))
        n = 200 if quick else 1000
        names = [f"gallery/photo-{i}.jpg" for i in range(n)]
        a = measure(lambda: [ours.url(x) for x in names], repeat=3)
        b = measure(lambda: [theirs.url(x) for x in names], repeat=3)
        rows.append(
            (
                "SAS `url()` per call (CPU)",
                f"{a.cpu / n * 1e6:.0f} µs",
                f"{b.cpu / n * 1e6:.0f} µs",
                ratio(b.cpu, a.cpu),
            )
        )
        rows += small_operations(ours, theirs, reps=20 if quick else 50)
        big = (32 if quick else 128) * _MiB
        ours.driver.put("big.bin", Zeros(big), size=big)
        idle = _run_child("baseline", "stowage", server.endpoint, container, 0)
        rows.append(("idle process peak RSS (baseline)", f"{idle['rss']:.0f} MiB", "", ""))
        x64 = _run_child("first64k", "stowage", server.endpoint, container, 0)
        y64 = _run_child("first64k", "theirs", server.endpoint, container, 0)
        rows.append(
            (
                f"first 64 KiB of a {big // _MiB} MiB blob: wall / peak RSS",
                f"{x64['seconds'] * 1e3:.0f} ms / {x64['rss']:.0f} MiB",
                f"{y64['seconds'] * 1e3:.0f} ms / {y64['rss']:.0f} MiB",
                ratio(y64["seconds"], x64["seconds"]),
            )
        )
        upload = (64 if quick else 256) * _MiB
        xup = _run_child("upload", "stowage", server.endpoint, container, upload)
        yup = _run_child("upload", "theirs", server.endpoint, container, upload)
        rows.append(
            (
                f"upload {upload // _MiB} MiB (new name): wall / peak RSS",
                f"{xup['seconds']:.1f} s / {xup['rss']:.0f} MiB",
                f"{yup['seconds']:.1f} s / {yup['rss']:.0f} MiB",
                ratio(yup["seconds"], xup["seconds"]),
            )
        )
        keys = 500 if quick else 3000
        listing = server.create_container()
        client = server.client().get_container_client(listing)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.upload_blob(f"many/{i:05d}", b""), range(keys)))
        lo, lt = _ours(server.endpoint, listing), _theirs(server.endpoint, listing)
        x = measure(lambda: lo.listdir("many"), repeat=3)
        y = measure(lambda: lt.listdir("many"), repeat=3)
        rows.append(
            (
                f"listdir of {keys:,} blobs (wall)",
                f"{x.wall * 1e3:.0f} ms",
                f"{y.wall * 1e3:.0f} ms",
                ratio(y.wall, x.wall),
            )
        )
        rows.append(import_row("stowage.drivers.azure", "storages.backends.azure_storage"))
    finally:
        server.stop()
    return section(
        "azure",
        TITLE,
        rows,
        ("measure", "stowage", "django-storages", "ratio"),
        notes=(
            "Same Azurite, one run. stowage's save under a new name is an atomic create "
            "(If-None-Match; a large one staged and copied into place server-side); "
            "django-storages checks exists() and then uploads. Peak RSS is of a fresh process "
            "with Django and the client imported; the idle row is that process doing nothing."
        ),
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, which, endpoint, container, size = sys.argv[2:7]
        _child(case, which, endpoint, container, int(size))
