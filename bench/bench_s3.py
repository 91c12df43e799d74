"""S3: stowage against django-storages' S3Storage on the same moto server.

Client CPU is ``time.process_time()`` of this process (all its threads),
so moto's own slowness does not hide what each client spends. Peak memory
is measured in a fresh child process per case.
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

TITLE = "S3 (moto): stowage vs django-storages S3Storage"
_MiB = 1024 * 1024


def _stowage(server: Any, bucket: str, **extra: Any) -> Any:
    from stowage import S3Storage

    return S3Storage(**server.options(bucket), **extra)


def _theirs(server: Any, bucket: str, file_overwrite: bool = False) -> Any:
    from storages.backends.s3 import S3Storage

    o = server.options(bucket)
    return S3Storage(
        bucket_name=bucket,
        endpoint_url=o["endpoint_url"],
        access_key=o["access_key"],
        secret_key=o["secret_key"],
        region_name=o["region_name"],
        file_overwrite=file_overwrite,
    )


def _child(case: str, which: str, endpoint: str, bucket: str, size: int) -> None:
    """Run one memory case in this (fresh) process and print its figures as JSON."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from bench._measure import peak_rss_mib
    from tests.servers.moto import MotoServer

    server = MotoServer(process=None, endpoint=endpoint)  # type: ignore[arg-type]
    storage = _stowage(server, bucket) if which == "stowage" else _theirs(server, bucket)
    if case == "upload-overwrite":
        storage = (
            _stowage(server, bucket, file_overwrite=True)
            if which == "stowage"
            else _theirs(server, bucket, file_overwrite=True)
        )
    if case == "first64k":
        storage.exists("big.bin")  # both clients made and connected before timing
    start, cpu = time.perf_counter(), time.process_time()
    if case == "baseline":
        pass
    elif case == "first64k":
        with storage.open("big.bin", "rb") as handle:
            data = handle.read(64 * 1024)
        assert len(data) == 64 * 1024
    else:
        from django.core.files.base import File

        storage.save(f"upload-{which}.bin", File(Zeros(size), name="upload.bin"))
    figures = {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "rss": peak_rss_mib(),
    }
    print(json.dumps(figures))


def _run_child(case: str, which: str, endpoint: str, bucket: str, size: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_s3",
            "--child",
            case,
            which,
            endpoint,
            bucket,
            str(size),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _with_reused_connections(logs: Path, *, reps: int) -> list[tuple[str, ...]]:
    """Time the small operations again on moto served with keep-alive connections."""
    from django.core.files.base import ContentFile

    from bench import moto_keepalive

    server = moto_keepalive.start(logs)
    try:
        bucket = server.create_bucket()
        ours, theirs = _stowage(server, bucket), _theirs(server, bucket)
        ours.save("small.txt", ContentFile(b"x" * 1024))
        rows = small_operations(ours, theirs, reps=reps)
    finally:
        server.stop()
    return [(f"{row[0]}, connections reused", *row[1:], "") for row in rows]


def run(args: argparse.Namespace) -> str:
    """Measure both clients on one moto server and return the Markdown section."""
    from django.core.files.base import ContentFile

    from tests.servers.moto import start_moto

    quick = args.quick
    logs = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = start_moto(logs)
    rows: list[tuple[str, ...]] = []
    try:
        bucket = server.create_bucket()
        ours, theirs = _stowage(server, bucket), _theirs(server, bucket)
        ours.save("small.txt", ContentFile(b"x" * 1024))

        n = 200 if quick else 2000
        # Distinct names, as a page listing files asks for them.
        names = [f"gallery/photo-{i}.jpg" for i in range(n)]
        t_ours = measure(lambda: [ours.url(x) for x in names], repeat=5)
        t_theirs = measure(lambda: [theirs.url(x) for x in names], repeat=5)
        t_ours = type(t_ours)(t_ours.wall / n, t_ours.cpu / n)
        t_theirs = type(t_theirs)(t_theirs.wall / n, t_theirs.cpu / n)
        rows.append(
            (
                "signed `url()` per call (CPU)",
                f"{t_ours.cpu * 1e6:.0f} µs",
                f"{t_theirs.cpu * 1e6:.0f} µs",
                ratio(t_theirs.cpu, t_ours.cpu),
                "≥ 30×",
            )
        )
        rows += small_operations(ours, theirs, reps=20 if quick else 60, goal="≥ 4×")
        # A missing name costs stowage a listing too: a directory exists for Django.
        a = measure(lambda: ours.exists("missing.txt"), repeat=5, number=20 if quick else 60)
        b = measure(lambda: theirs.exists("missing.txt"), repeat=5, number=20 if quick else 60)
        rows.append(
            (
                "exists of a missing name (HEAD, then a listing for stowage): client CPU (wall)",
                f"{a.cpu * 1e3:.2f} ms ({a.wall * 1e3:.1f} ms)",
                f"{b.cpu * 1e3:.2f} ms ({b.wall * 1e3:.1f} ms)",
                f"{ratio(b.cpu, a.cpu)} ({ratio(b.wall, a.wall)} wall)",
                "",
            )
        )
        rows += _with_reused_connections(logs, reps=20 if quick else 60)

        big = (50 if quick else 200) * _MiB
        ours.driver.put("big.bin", Zeros(big), size=big)
        idle = _run_child("baseline", "stowage", server.endpoint, bucket, 0)
        rows.append(("idle process peak RSS (baseline)", f"{idle['rss']:.0f} MiB", "", "", ""))
        a64 = _run_child("first64k", "stowage", server.endpoint, bucket, 0)
        b64 = _run_child("first64k", "theirs", server.endpoint, bucket, 0)
        rows.append(
            (
                f"first 64 KiB of a {big // _MiB} MiB object: client CPU (wall) / peak RSS",
                f"{a64['cpu'] * 1e3:.1f} ms ({a64['seconds'] * 1e3:.0f} ms) / {a64['rss']:.0f} MiB",
                f"{b64['cpu'] * 1e3:.0f} ms ({b64['seconds'] * 1e3:.0f} ms) / {b64['rss']:.0f} MiB",
                f"{ratio(b64['cpu'], a64['cpu'])} ({ratio(b64['seconds'], a64['seconds'])} wall)",
                "≥ 50×, RSS < 64 MiB",
            )
        )
        upload = (256 if quick else 1024) * _MiB
        base = _run_child("baseline", "stowage", server.endpoint, bucket, 0)
        for case, label in (
            ("upload-overwrite", "overwrite"),
            ("upload", "new name (stowage: atomic create)"),
        ):
            aup = _run_child(case, "stowage", server.endpoint, bucket, upload)
            bup = _run_child(case, "theirs", server.endpoint, bucket, upload)
            rows.append(
                (
                    f"upload {upload // _MiB} MiB, {label}: wall / peak RSS",
                    f"{aup['seconds']:.1f} s / {aup['rss']:.0f} MiB",
                    f"{bup['seconds']:.1f} s / {bup['rss']:.0f} MiB",
                    ratio(bup["rss"] - base["rss"], aup["rss"] - base["rss"])
                    + " less memory above the idle process",
                    "RSS < 100 MiB",
                )
            )

        keys = 1000 if quick else 10_000
        listing = server.create_bucket()
        client = server.boto3()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: client.put_object(Bucket=listing, Key=f"many/{i:05d}", Body=b""),
                    range(keys),
                )
            )
        lo, lt = _stowage(server, listing), _theirs(server, listing)
        a = measure(lambda: lo.listdir("many"), repeat=3)
        b = measure(lambda: lt.listdir("many"), repeat=3)
        assert len(lo.listdir("many")[1]) == keys
        rows.append(
            (
                f"listdir of {keys:,} keys: client CPU (wall)",
                f"{a.cpu * 1e3:.0f} ms ({a.wall * 1e3:.0f} ms)",
                f"{b.cpu * 1e3:.0f} ms ({b.wall * 1e3:.0f} ms)",
                f"{ratio(b.cpu, a.cpu)} ({ratio(b.wall, a.wall)} wall)",
                "≥ 2×",
            )
        )
        rows.append(import_row("stowage.drivers.s3", "storages.backends.s3", goal="≥ 5×"))
    finally:
        server.stop()
    return section(
        "s3",
        TITLE,
        rows,
        ("measure", "stowage", "django-storages", "ratio", "goal"),
        notes=(
            "Peak RSS is of a fresh process that has imported Django, the client and the test "
            "helpers; an idle such process peaks at the baseline given here. "
            "A stowage save under a new name is an atomic create: a large one is uploaded to a "
            "temporary key and copied into place with a conditional multipart copy, which moto "
            "performs by copying the bytes in Python, so that row's wall time is moto's. "
            "moto assembles a multipart upload faster when the client sent part checksums, as "
            "boto3 does by default since 1.36 and obstore does not; boto3 with checksums turned "
            "off took as long as stowage in our runs. "
            "moto answers slowly (it parses and stores every request in Python), so wall times "
            "are dominated by the server and ratios compare client CPU, the wall-time ratio "
            "given beside. moto reads a whole object to serve any range of it (about 90 ms for "
            "200 MiB), which bounds the wall-time ratio of the first-64-KiB row; django-storages "
            "downloads the whole object into a temporary file on open(), stowage fetches ranges. "
            "`moto_server` closes the connection after every response, so each request there "
            "pays for a new connection; the rows marked *connections reused* run the same moto "
            "application behind a keep-alive WSGI server (cheroot), as AWS S3 keeps connections "
            "open."
        ),
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, which, endpoint, bucket, size = sys.argv[2:7]
        _child(case, which, endpoint, bucket, int(size))
