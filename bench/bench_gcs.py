"""Measure stowage's GCS backend against django-storages' GoogleCloudStorage.

Both run against one fake-gcs-server in the same run, with the same client
library underneath (google-cloud-storage), so the differences come from what
each backend asks of it. Client CPU and request counts matter more than wall
time here: the emulator answers in well under a millisecond, real GCS in tens.
Memory figures come from fresh interpreters, above each library's own idle
process, since a process's peak RSS only ever grows.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._measure import (
    Row,
    Section,
    child_main,
    import_costs,
    import_row,
    memory_pair,
    memory_row,
    paired,
    timed,
    timing_row,
)

__all__ = ["TITLE", "run"]

TITLE = "Google Cloud Storage (fake-gcs-server)"

_MiB = 1024 * 1024
_EMAIL = "bench@stowage-bench.iam.gserviceaccount.com"


def _service_account_info() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "stowage-bench",
        "private_key_id": "bench",
        "private_key": pem,
        "client_email": _EMAIL,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }


def _ours(endpoint: str, bucket: str, **options: Any) -> Any:
    from stowage import GCSStorage

    return GCSStorage(bucket_name=bucket, api_endpoint=endpoint, anonymous=True, **options)


def _theirs(bucket: str, credentials: Any = None) -> Any:
    # django-storages reaches an emulator through STORAGE_EMULATOR_HOST, set by run().
    from google.auth.credentials import AnonymousCredentials
    from storages.backends.gcloud import GoogleCloudStorage  # type: ignore[import-untyped]

    return GoogleCloudStorage(
        bucket_name=bucket,
        project_id="stowage-bench",
        credentials=credentials or AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )


class _Counter:
    def __init__(self, *storages: Any) -> None:
        self.count = 0
        for storage in storages:
            if hasattr(storage, "driver"):  # stowage sends every request on its pool
                api = storage.driver._connection.json
                api.pool.send = self._counted(api.pool.send)
            else:  # django-storages, through the client library's session
                storage.client._http.hooks["response"].append(self._hook)

    def _counted(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return send(*args, **kwargs)

        return counted

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return response

    def per_call(self, call: Callable[[], object], calls: int = 5) -> float:
        before = self.count
        for _ in range(calls):
            call()
        return (self.count - before) / calls


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def _operation(spec: dict[str, Any]) -> dict[str, float]:
    """Run one case in a fresh process (see ``child_main``)."""
    from django.core.files.base import ContentFile, File

    side = spec["side"]
    storage = (
        _ours(spec["endpoint"], spec["bucket"]) if side == "stowage" else _theirs(spec["bucket"])
    )
    # Warm up: client, connection.
    storage.save(f"warm/{side}-{spec['case']}.txt", ContentFile(b"warm"))
    if spec["case"] == "first64k":
        wall, cpu = time.perf_counter(), time.process_time()
        with storage.open(spec["name"], "rb") as handle:
            assert len(handle.read(64 * 1024)) == 64 * 1024
        return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    # Several uploads, each under a name of its own, deleted untimed: one upload of
    # 64 MiB lasts a fraction of a second, which one preemption moves by a tenth.
    wall = cpu = 0.0
    for _ in range(spec["transfers"]):
        with open(spec["path"], "rb") as source:
            started, cpu_started = time.perf_counter(), time.process_time()
            name = storage.save(f"upload/{side}-{uuid.uuid4().hex}.bin", File(source))
            wall += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        storage.delete(name)
    return {"wall": wall / spec["transfers"], "cpu": cpu / spec["transfers"]}


_IMPORTS = {
    "stowage": ["stowage.drivers.gcs", "google.cloud.storage"],
    "theirs": ["storages.backends.gcloud"],
}


# -- the run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Section:
    """Start fake-gcs-server, measure both backends on it, return the section."""
    from django.core.files.base import ContentFile
    from google.cloud import storage as gcs  # type: ignore[import-untyped]
    from google.oauth2 import service_account

    from tests.servers.fake_gcs import start_fake_gcs

    quick, runs = args.quick, args.runs
    small_calls = 5 if quick else 60
    many_keys = 300 if quick else 3000
    large = (2 if quick else 64) * _MiB
    transfers = 1 if quick else 3

    logs = tempfile.TemporaryDirectory()
    server = start_fake_gcs(Path(logs.name))
    previous_emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    rows: list[Row] = []
    try:
        bucket = server.create_bucket("stowage-bench")
        info = _service_account_info()

        # Signed url(), one new name per call as a page of thumbnails would ask.
        ours_sign = _ours(server.url, bucket, credentials=info)
        key = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        theirs_sign = _theirs(bucket, key)
        names = (f"thumbs/{i}.jpg" for i in itertools.count())
        ours_sign.url("warm.jpg")
        theirs_sign.url("warm.jpg")
        pair = paired(
            timed(lambda: ours_sign.url(next(names)), 20 if quick else 100),
            timed(lambda: theirs_sign.url(next(names)), 20 if quick else 100),
            runs,
        )
        rows.append(timing_row("signed `url()`", pair, scale=1e6, unit="µs", digits=0))
        # The floor of that row: the RSA signature of a string to sign of the same length.
        to_sign = ours_sign.url("thumbs/0.jpg").encode()[:300]
        rsa_floor = timed(lambda: key.sign_bytes(to_sign), 20 if quick else 100)
        signature_floor = (
            f"The bare RSA signature of a string to sign that long takes "
            f"{statistics.median(rsa_floor()['cpu'] for _ in range(runs)) * 1e6:.0f} µs of CPU "
            f"here (median of {runs})."
        )
        # Past the RSA floor: an HMAC key (a service account's, as GCS issues them)
        # signs with HMAC-SHA256; django-storages has only the service-account key.
        ours_hmac = _ours(
            server.url,
            bucket,
            hmac_access_id="GOOG1EXAMPLEBENCHACCESSIDX",
            hmac_secret="bench-hmac-secret-not-a-real-key-0123456789",
        )
        ours_hmac.url("warm.jpg")
        pair = paired(
            timed(lambda: ours_hmac.url(next(names)), 100 if quick else 1000),
            timed(lambda: theirs_sign.url(next(names)), 20 if quick else 100),
            runs,
        )
        rows.append(
            timing_row(
                "signed `url()`, stowage with an HMAC key (`hmac_access_id`)",
                pair,
                goal="gcs-hmac-url",
                scale=1e6,
                unit="µs",
                digits=1,
            )
        )
        # A page rendering one file many times: the cache returns the URL signed first.
        ours_cached = _ours(server.url, bucket, credentials=info, url_cache_size=1000)
        ours_cached.url("hero.jpg")
        pair = paired(
            timed(lambda: ours_cached.url("hero.jpg"), 100 if quick else 1000),
            timed(lambda: theirs_sign.url("hero.jpg"), 20 if quick else 100),
            runs,
        )
        rows.append(
            timing_row(
                "signed `url()` of one name again, stowage with `url_cache_size=1000`",
                pair,
                scale=1e6,
                unit="µs",
                digits=1,
            )
        )

        # Small files: client CPU and requests per operation.
        ours = _ours(server.url, bucket, location="ours")
        theirs = _theirs(bucket)
        ours.save("warm.txt", ContentFile(b"warm"))
        theirs.save("theirs/warm.txt", ContentFile(b"warm"))
        counter = _Counter(ours, theirs)
        body = b"x" * 1024
        serial = itertools.count()

        def ours_save() -> object:
            return ours.save(f"small/{next(serial)}.txt", ContentFile(body))

        def theirs_save() -> object:
            return theirs.save(f"theirs/small/{next(serial)}.txt", ContentFile(body))

        def read(storage: Any, name: str) -> Callable[[], object]:
            def call() -> object:
                with storage.open(name, "rb") as handle:
                    return handle.read()

            return call

        ops: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            ("`save()` of 1 KiB", ours_save, theirs_save),
            (
                "`open()` + `read()` of 1 KiB",
                read(ours, "warm.txt"),
                read(theirs, "theirs/warm.txt"),
            ),
            (
                "`exists()` of a file",
                lambda: ours.exists("warm.txt"),
                lambda: theirs.exists("theirs/warm.txt"),
            ),
            (
                "`exists()` of a missing name",
                lambda: ours.exists("missing.txt"),
                lambda: theirs.exists("theirs/missing.txt"),
            ),
        ]
        for label, mine_call, their_call in ops:
            pair = paired(timed(mine_call, small_calls), timed(their_call, small_calls), runs)
            mine_requests = counter.per_call(mine_call)
            their_requests = counter.per_call(their_call)
            row = timing_row(label, pair, scale=1e6, unit="µs", digits=0)
            row.ours += f"; requests: {mine_requests:g}"
            row.theirs += f"; requests: {their_requests:g}"
            rows.append(row)

        # listdir of a directory spanning pages (1,000 entries per page).
        official_client = gcs.Client(
            project="stowage-bench",
            credentials=_anonymous(),
            client_options={"api_endpoint": server.url},
        )
        official = official_client.bucket(bucket)
        for index in range(many_keys):
            official.blob(f"ours/many/{index:05d}.txt").upload_from_string(b"")
            official.blob(f"theirs/many/{index:05d}.txt").upload_from_string(b"")
        assert len(ours.listdir("many")[1]) == len(theirs.listdir("theirs/many")[1]) == many_keys
        pair = paired(
            timed(lambda: ours.listdir("many")), timed(lambda: theirs.listdir("theirs/many")), runs
        )
        rows.append(
            timing_row(
                f"`listdir()` of {many_keys:,} files", pair, by="wall", goal="gcs-listdir", digits=1
            )
        )
        fetch, decode = _bare_listing(server.url, bucket, "theirs/many/", runs)
        listing_floor = (
            f"A bare HTTP request of the same listing pages, their JSON left unread, takes "
            f"{fetch * 1e3:.1f} ms here, and decoding that JSON with Python's `json` module "
            f"{decode * 1e3:.1f} ms more (medians of {runs}; the emulator sends every field of "
            f"every object). No client that reads the listing can list faster on this server, "
            f"so the most any ratio can reach is {pair[1]['wall'].median / (fetch + decode):.2f}× "
            f"against django-storages' {pair[1]['wall'].median * 1e3:.1f} ms."
        )

        # Large objects, each side in fresh processes, above its own idle process.
        block = os.urandom(_MiB)
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as source:
            for _ in range(large // _MiB):
                source.write(block)
        try:
            official.blob("large.bin").upload_from_filename(source.name)
            size = f"{large // _MiB} MiB"
            for what, title in (
                ("first64k", f"first 64 KiB of a {size} object"),
                ("upload", f"`save()` of a {size} file"),
            ):
                spec = {
                    "case": what,
                    "endpoint": server.url,
                    "bucket": bucket,
                    "name": "large.bin",
                    "path": source.name,
                    "transfers": transfers,
                }
                mem = memory_pair(
                    "bench.bench_gcs", spec, _IMPORTS, runs, {"STORAGE_EMULATOR_HOST": server.url}
                )
                rows.append(timing_row(title, (mem.ours, mem.theirs), by="wall", digits=1))
                rows.append(memory_row(title, mem))
        finally:
            os.unlink(source.name)
            official_client.close()

        rows.append(import_row("stowage.drivers.gcs", "storages.backends.gcloud", runs=runs))
        rows.append(
            import_row(
                "stowage.drivers.gcs, stowage.drivers.gcs.credentials, google_crc32c",
                "storages.backends.gcloud",
                runs=runs,
                label="cold import with what the first requests load (stowage: google-auth)",
            )
        )
        modules = ["stowage", "google.cloud.storage", "google.oauth2.service_account"]
        costs = import_costs(modules, runs)
        import_floor = (
            "Of the row with what the first requests load: stowage's first request loads "
            "google-auth (with service-account keys, "
            f"{costs['google.oauth2.service_account'] * 1e3:.0f} ms here) and its first save "
            "google-crc32c; django-storages' backend module imports google-cloud-storage "
            f"({costs['google.cloud.storage'] * 1e3:.0f} ms). stowage's adapter alone "
            f"(`import stowage`) takes {costs['stowage'] * 1e3:.0f} ms."
        )
    finally:
        if previous_emulator is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous_emulator
        server.stop()
        logs.cleanup()

    notes = """
Both backends speak the JSON API: django-storages through google-cloud-storage with its
defaults (overwrite on save), stowage with its own requests and defaults (no overwrite,
so an atomic create with `ifGenerationMatch=0`). Signing is RSA-SHA256 with a 2048-bit
service-account key on both sides in the first `url()` row, and the signature is most of
the call: no code passes that floor with such a key. stowage builds the V4 URL itself
and asks the key for the signature alone; django-storages goes through the client library's URL
builder. Past that floor, stowage signs with an HMAC key of the service
account (V4, `GOOG4-HMAC-SHA256`), which django-storages cannot use, and with
`url_cache_size` reuses a URL signed for the same name while half its lifetime is left.
Small-file rows give client CPU per call (the emulator's time is not counted) and HTTP
requests per call. stowage reads a large object by ranges; it uploads a large file of
known size in one streamed request of a resumable session, holding a few blocks in memory,
where django-storages reads up to 100 MiB into memory and sends it in one request.
stowage's `exists()` is one listing of the name's prefix, which also answers true for a
directory (Django's contract); django-storages reads the object's metadata. stowage sends
every request on its own kept-alive connections, with google-auth's credentials; it does
not use google-cloud-storage. fake-gcs-server
ignores `fields` (a partial response), which spares real GCS and the client the fields
stowage does not keep. Declaring a stowage storage does not import google-auth;
the first request does. The emulator shares the CPUs with the client.
"""
    large_runs = (
        f"Each run of a large-object row is a fresh process; a run's `save()` figure is the "
        f"mean of {transfers} uploads under new names."
    )
    notes += " " + " ".join((large_runs, signature_floor, listing_floor, import_floor))
    return Section("gcs", TITLE, rows, notes)


def _bare_listing(endpoint: str, bucket: str, prefix: str, runs: int) -> tuple[float, float]:
    """Return the median wall times of fetching a listing's pages, and of decoding their JSON."""
    import json
    import statistics

    import requests

    url = f"{endpoint}/storage/v1/b/{bucket}/o"
    times, decoding = [], []
    with requests.Session() as session:
        for _ in range(runs + 1):
            start = time.perf_counter()
            params = {"prefix": prefix, "delimiter": "/"}
            bodies = []
            while True:
                response = session.get(url, params=params)
                response.raise_for_status()
                bodies.append(response.content)
                found = re.search(rb'"nextPageToken"\s*:\s*"([^"]+)"', response.content)
                if found is None:
                    break
                params["pageToken"] = found.group(1).decode()
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for body in bodies:
                json.loads(body)
            decoding.append(time.perf_counter() - start)
    return statistics.median(times[1:]), statistics.median(decoding[1:])


def _anonymous() -> Any:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    child_main(_operation)
