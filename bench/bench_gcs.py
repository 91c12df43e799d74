"""Measure stowage's GCS backend against django-storages' GoogleCloudStorage.

Both run against one fake-gcs-server in the same run, with the same client
library underneath (google-cloud-storage), so the differences come from what
each backend asks of it. Client CPU and request counts matter more than wall
time here: the emulator answers in well under a millisecond, real GCS in tens.
Memory figures come from a fresh interpreter per measure, since a process's
peak RSS only ever grows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._measure import measure, ratio, section

__all__ = ["TITLE", "run"]

TITLE = "Google Cloud Storage (fake-gcs-server)"

_ROOT = Path(__file__).resolve().parent.parent
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


def _transport(storage: Any) -> Any:
    """Return the HTTP transport under a storage's client, to count requests."""
    client = storage.driver._client if hasattr(storage, "driver") else storage.client
    return client._http


class _Counter:
    def __init__(self, *storages: Any) -> None:
        self.count = 0
        for storage in storages:
            _transport(storage).hooks["response"].append(self._hook)

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


# -- measures in a fresh interpreter -----------------------------------------------------


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count (Linux: clear_refs), so it covers one operation."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _worker(spec: dict[str, Any]) -> dict[str, float]:
    """Run one memory measure in this (fresh) process and return its figures."""
    import resource

    import django
    from django.core.files.base import ContentFile, File

    django.setup()
    side, what = spec["side"], spec["what"]
    if side == "stowage":
        storage = _ours(spec["endpoint"], spec["bucket"])
    else:
        storage = _theirs(spec["bucket"])
    # Warm up: imports, client, connection.
    storage.save(f"warm/{side}-{what}.txt", ContentFile(b"warm"))
    with storage.open(f"warm/{side}-{what}.txt") as handle:
        handle.read()
    exact = _reset_peak_rss()
    before = _status_mib("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    if what == "first64k":
        with storage.open(spec["name"], "rb") as handle:
            assert len(handle.read(64 * 1024)) == 64 * 1024
    else:
        with open(spec["path"], "rb") as source:
            storage.save(f"upload/{side}.bin", File(source))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if exact:
        peak = _status_mib("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "cpu": cpu, "peak": peak, "growth": max(0.0, peak - before)}


def _in_fresh_process(spec: dict[str, Any], endpoint: str) -> dict[str, float]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "STORAGE_EMULATOR_HOST": endpoint,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_gcs", json.dumps(spec)],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"benchmark worker failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _cold_import(statement: str, repeat: int) -> float:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], cwd=_ROOT, env=env, check=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


# -- the run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> str:
    """Start fake-gcs-server, measure both backends on it, return the Markdown section."""
    from django.core.files.base import ContentFile
    from google.cloud import storage as gcs  # type: ignore[import-untyped]
    from google.oauth2 import service_account

    from tests.servers.fake_gcs import start_fake_gcs

    quick = bool(getattr(args, "quick", False))
    repeat = 3 if quick else 5
    small_calls = 20 if quick else 60
    many_keys = 1200 if quick else 3000
    large = (16 if quick else 64) * _MiB

    logs = tempfile.TemporaryDirectory()
    server = start_fake_gcs(Path(logs.name))
    previous_emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    try:
        bucket = server.create_bucket("stowage-bench")
        info = _service_account_info()
        rows: list[tuple[str, ...]] = []

        # Signed url(), one new name per call as a page of thumbnails would ask.
        ours_sign = _ours(server.url, bucket, credentials=info)
        key = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        theirs_sign = _theirs(bucket, key)
        names = (f"thumbs/{i}.jpg" for i in itertools.count())
        ours_sign.url("warm.jpg")
        theirs_sign.url("warm.jpg")
        mine = measure(lambda: ours_sign.url(next(names)), repeat=repeat, number=100)
        other = measure(lambda: theirs_sign.url(next(names)), repeat=repeat, number=100)
        rows.append(
            ("signed `url()`", _us(mine.wall), _us(other.wall), ratio(other.wall, mine.wall))
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
            mine = measure(mine_call, repeat=repeat, number=small_calls)
            other = measure(their_call, repeat=repeat, number=small_calls)
            mine_requests = counter.per_call(mine_call)
            their_requests = counter.per_call(their_call)
            rows.append(
                (
                    f"{label}: client CPU (requests)",
                    f"{_us(mine.cpu)} ({mine_requests:g})",
                    f"{_us(other.cpu)} ({their_requests:g})",
                    ratio(other.cpu, mine.cpu),
                )
            )

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
        mine = measure(lambda: ours.listdir("many"), repeat=repeat)
        other = measure(lambda: theirs.listdir("theirs/many"), repeat=repeat)
        assert len(ours.listdir("many")[1]) == len(theirs.listdir("theirs/many")[1]) == many_keys
        rows.append(
            (
                f"`listdir()` of {many_keys:,} files: wall (client CPU)",
                f"{_ms(mine.wall)} ({_ms(mine.cpu)})",
                f"{_ms(other.wall)} ({_ms(other.cpu)})",
                ratio(other.wall, mine.wall),
            )
        )

        # Large objects, each side in a fresh interpreter.
        block = os.urandom(_MiB)
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as source:
            for _ in range(large // _MiB):
                source.write(block)
        try:
            official.blob("large.bin").upload_from_filename(source.name)
            label = f"{large // _MiB} MiB"
            for what, title in (
                ("first64k", f"first 64 KiB of a {label} object"),
                ("upload", f"`save()` of a {label} file"),
            ):
                spec = {
                    "what": what,
                    "endpoint": server.url,
                    "bucket": bucket,
                    "name": "large.bin",
                    "path": source.name,
                }
                mine_fig = _in_fresh_process({**spec, "side": "stowage"}, server.url)
                their_fig = _in_fresh_process({**spec, "side": "django-storages"}, server.url)
                rows.append(
                    (
                        f"{title}: wall (client CPU)",
                        f"{_ms(mine_fig['wall'])} ({_ms(mine_fig['cpu'])})",
                        f"{_ms(their_fig['wall'])} ({_ms(their_fig['cpu'])})",
                        ratio(their_fig["wall"], mine_fig["wall"]),
                    )
                )
                rows.append(
                    (
                        f"{title}: peak RSS (growth)",
                        f"{mine_fig['peak']:.0f} MiB (+{mine_fig['growth']:.0f})",
                        f"{their_fig['peak']:.0f} MiB (+{their_fig['growth']:.0f})",
                        ratio(their_fig["growth"], max(mine_fig["growth"], 1.0)),
                    )
                )
        finally:
            os.unlink(source.name)
            official_client.close()

        # Cold import: what declaring a storage costs a fresh process (models, settings).
        declare_ours = (
            "import django; django.setup(); from stowage import GCSStorage; "
            "GCSStorage(bucket_name='b')"
        )
        declare_theirs = (
            "import django; django.setup(); "
            "from storages.backends.gcloud import GoogleCloudStorage; "
            "GoogleCloudStorage(bucket_name='b')"
        )
        mine_import = _cold_import(declare_ours, repeat)
        their_import = _cold_import(declare_theirs, repeat)
        rows.append(
            (
                "cold import + declare a storage",
                _ms(mine_import),
                _ms(their_import),
                ratio(their_import, mine_import),
            )
        )
        first_use = _cold_import(declare_ours + "; import google.cloud.storage", repeat)
        rows.append(
            (
                "cold import with the client library (first request)",
                _ms(first_use),
                _ms(their_import),
                ratio(their_import, first_use),
            )
        )
    finally:
        if previous_emulator is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous_emulator
        server.stop()
        logs.cleanup()

    notes = f"""
Both backends use google-cloud-storage underneath: django-storages with its defaults
(overwrite on save), stowage with its own (no overwrite, so an atomic create with
`ifGenerationMatch=0`). Signing is RSA-SHA256 with a 2048-bit service-account key on
both sides, which dominates `url()`. Small-file rows give client CPU per call (the
emulator's time is not counted) and, in brackets, HTTP requests per call. Peak RSS is
the process's resident memory at its highest during the one operation (the kernel's
count restarted just before it), in a fresh interpreter after a warm-up; the growth is
over the RSS before the operation, and its ratio counts at least 1 MiB for stowage.

stowage reads a large object by ranges and uploads it in resumable 8 MiB chunks;
django-storages downloads the whole object on first read and uploads in one 100 MiB
chunk. fake-gcs-server reassembles a resumable upload in memory at each chunk and at
completion (measured: 26 ms for the first 8 MiB chunk, 130 ms for the second, 80 ms to
complete) where real GCS costs about a round trip per chunk, so the upload's wall time
here favours the single request. `exists()` of a missing name costs stowage a second
request because it also answers true for directories (Django's contract). Declaring a
stowage storage does not import google-cloud-storage; the first request does. The
emulator shares the two CPUs with the client: figures move by a third between runs.
Reproduce with `python -m bench gcs{" --quick" if quick else ""}` ({many_keys:,} files
listed, {large // _MiB} MiB objects).
"""
    return section("gcs", TITLE, rows, ("measure", "stowage", "django-storages", "ratio"), notes)


def _anonymous() -> Any:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
