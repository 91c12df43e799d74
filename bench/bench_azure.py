"""Azure: stowage against django-storages' AzureStorage on the same Azurite.

django-storages runs with its defaults, but for ``expiration_secs`` in the
``url()`` row: unset, it builds no SAS and returns the bare blob URL, so it
is set there to stowage's default lifetime (an hour) and both sides sign.
Client CPU is ``time.process_time()`` of this process; peak memory is
measured in fresh processes, above each library's own idle process.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._measure import (
    Row,
    Section,
    Zeros,
    child_main,
    import_row,
    memory_pair,
    memory_row,
    paired,
    small_operations,
    timed,
    timing_row,
)

__all__ = ["TITLE", "run"]

TITLE = "Azure Blob Storage (Azurite): stowage vs django-storages AzureStorage"
_MiB = 1024 * 1024
_IMPORTS = {"stowage": ["stowage.drivers.azure"], "theirs": ["storages.backends.azure_storage"]}
#: stowage's default ``querystring_expire``, given to django-storages for its SAS.
_EXPIRE = 3600


def _connection(endpoint: str) -> str:
    from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY

    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint};"
    )


def _ours(connection: str, container: str) -> Any:
    from stowage import AzureStorage

    return AzureStorage(connection_string=connection, azure_container=container)


def _theirs(connection: str, container: str, **extra: Any) -> Any:
    from storages.backends.azure_storage import AzureStorage

    return AzureStorage(connection_string=connection, azure_container=container, **extra)


def _operation(spec: dict[str, Any]) -> dict[str, float]:
    """Run one case in a fresh process (see ``child_main``)."""
    import time

    from django.core.files.base import File

    make = _ours if spec["side"] == "stowage" else _theirs
    storage = make(spec["connection"], spec["container"])
    storage.exists("small.txt")  # the client made and connected before timing
    wall, cpu = time.perf_counter(), time.process_time()
    if spec["case"] == "first64k":
        with storage.open("big.bin", "rb") as handle:
            assert len(handle.read(64 * 1024)) == 64 * 1024
    else:
        storage.save(f"upload-{spec['side']}.bin", File(Zeros(spec["size"]), name="up.bin"))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def run(args: argparse.Namespace) -> Section:
    """Measure both clients on one Azurite and return the section."""
    from django.core.files.base import ContentFile

    from tests.servers.azurite import start_azurite

    quick, runs = args.quick, args.runs
    data = Path(tempfile.mkdtemp(prefix="bench-azure-"))
    server = start_azurite(data)
    rows: list[Row] = []
    try:
        connection = _connection(server.endpoint)
        container = server.create_container()
        ours, theirs = _ours(connection, container), _theirs(connection, container)
        ours.save("small.txt", ContentFile(b"x" * 1024))

        n = 50 if quick else 1000
        names = [f"gallery/photo-{i}.jpg" for i in range(n)]
        signing = _theirs(connection, container, expiration_secs=_EXPIRE)
        assert "sig=" in ours.url("warm.jpg")
        assert "sig=" in signing.url("warm.jpg")
        pair = paired(
            timed(lambda: [ours.url(x) for x in names]),
            timed(lambda: [signing.url(x) for x in names]),
            runs,
        )
        rows.append(
            timing_row(
                f"SAS `url()` per call (django-storages with `expiration_secs={_EXPIRE}`)",
                pair,
                scale=1e6 / n,
                unit="µs",
            )
        )
        rows += small_operations(ours, theirs, runs=runs, number=5 if quick else 50)
        # stowage's exists() is one listing, which also finds a directory (Django's contract).
        number = 5 if quick else 50
        pair = paired(
            timed(lambda: ours.exists("missing.txt"), number),
            timed(lambda: theirs.exists("missing.txt"), number),
            runs,
        )
        label = "exists of a missing name (stowage: one listing, django-storages: HEAD)"
        rows.append(timing_row(label, pair, by="wall"))

        big = (2 if quick else 128) * _MiB
        ours.driver.put("big.bin", Zeros(big), size=big)
        spec = {"case": "first64k", "connection": connection, "container": container}
        mem = memory_pair("bench.bench_azure", spec, _IMPORTS, runs)
        label = f"first 64 KiB of a {big // _MiB} MiB blob"
        rows.append(timing_row(label, (mem.ours, mem.theirs), by="wall"))
        rows.append(memory_row(label, mem))

        upload = (4 if quick else 256) * _MiB
        spec = {"case": "upload", "connection": connection, "container": container}
        mem = memory_pair("bench.bench_azure", {**spec, "size": upload}, _IMPORTS, runs)
        label = f"upload {upload // _MiB} MiB (new name)"
        rows.append(timing_row(label, (mem.ours, mem.theirs), by="wall", scale=1, unit="s"))
        rows.append(memory_row(label, mem))

        keys = 300 if quick else 3000
        listing = server.create_container()
        client = server.client().get_container_client(listing)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.upload_blob(f"many/{i:05d}", b""), range(keys)))
        lo, lt = _ours(connection, listing), _theirs(connection, listing)
        assert len(lo.listdir("many")[1]) == len(lt.listdir("many")[1]) == keys
        pair = paired(timed(lambda: lo.listdir("many")), timed(lambda: lt.listdir("many")), runs)
        rows.append(timing_row(f"listdir of {keys:,} blobs", pair, by="wall", digits=1))
        rows.append(
            import_row("stowage.drivers.azure", "storages.backends.azure_storage", runs=runs)
        )
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return Section(
        "azure",
        TITLE,
        rows,
        notes=(
            "Same Azurite. django-storages runs with its defaults (`overwrite_files=False`: "
            "a save asks exists() and then uploads), but the `url()` row sets its "
            "`expiration_secs` so that it signs, as stowage does by default. stowage's save "
            "under a new name is an atomic create (If-None-Match; a large one staged and "
            "copied into place server-side). Both sign a SAS with the account key. stowage's "
            "exists() lists the name's prefix, so one request finds a blob or a directory; "
            "django-storages' asks for the blob alone and answers False for a directory."
        ),
    )


if __name__ == "__main__":
    child_main(_operation)
