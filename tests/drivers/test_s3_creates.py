"""Large creates on S3: one multipart upload straight to the key, completed if it is free.

On moto, which honours ``If-None-Match: *`` on CompleteMultipartUpload, a
save under a new name larger than ``multipart_threshold`` is one multipart
upload to its own key: no staging key, no copy. A recording proxy shows the
requests; boto3, beside the driver, shows what is stored and what uploads
are pending. On s3rver (conditional writes ignored) the staged fallback is
checked in ``test_s3_compat.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import S3Storage
from stowage.drivers.s3 import S3Driver, S3Options
from stowage.exceptions import AlreadyExists, ServiceUnavailable
from stowage.testing import AsyncStorageContract, StorageContract
from stowage.testing.url_contract import Fetch, http_fetch
from tests.faults.http_proxy import CountingProxy, Recorded
from tests.faults.proxy import Fault, FaultProxy
from tests.servers.moto import SECRET_KEY, MotoServer

_MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent.parent

#: Headers of a request that say how it is sent or signed, not what the object gets.
_TRANSPORT = {
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "host",
    "if-none-match",
    "proxy-connection",
    "user-agent",
    "x-amz-content-sha256",
    "x-amz-date",
}


@pytest.fixture
def options(s3_server: MotoServer, s3_bucket: str) -> dict[str, Any]:
    return s3_server.options(s3_bucket)


@pytest.fixture
def serial_options(moto_serial: MotoServer) -> dict[str, Any]:
    """Options of a fresh bucket on moto serving one request at a time (atomic creates)."""
    return moto_serial.options(moto_serial.create_bucket())


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    server = CountingProxy()
    yield server
    server.close()


def _proxied(options: dict[str, Any], proxy: CountingProxy, **extra: Any) -> S3Storage:
    """Return a storage whose every request, obstore's and stowage's, goes through ``proxy``."""
    storage = S3Storage(**options, proxies={"http": proxy.url}, **extra)
    # The probes (once per process and bucket) are not what is measured.
    storage.driver.probe_conditional_writes()  # type: ignore[attr-defined]
    storage.driver.upload_checksum()  # type: ignore[attr-defined]
    proxy.recorded.clear()
    return storage


def _keys(server: MotoServer, bucket: str) -> list[str]:
    listing = server.boto3().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _pending(server: MotoServer, bucket: str) -> list[str]:
    return [
        u["Key"] for u in server.boto3().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    ]


def _body(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"!" * (size % 256)


def _object_headers(request: Recorded) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k not in _TRANSPORT}


# -- one multipart upload, no copies ---------------------------------------------------------


def test_a_large_create_is_one_multipart_upload_to_its_key(
    options: dict[str, Any], s3_server: MotoServer, proxy: CountingProxy
) -> None:
    storage = _proxied(options, proxy, multipart_threshold=5 * _MiB, multipart_chunksize=5 * _MiB)
    data = _body(12 * _MiB)
    name = storage.save("big/report.bin", ContentFile(data))
    assert name == "big/report.bin"
    bucket = options["bucket_name"]
    path = f"/{bucket}/big/report.bin"
    # The adapter looks first (a large body: one listing answers exists()), then:
    # create, three parts, complete.
    calls = [(r.method, r.path, sorted(r.query)) for r in proxy.recorded]
    assert calls == [
        ("GET", f"/{bucket}/", ["delimiter", "encoding-type", "list-type", "prefix"]),
        ("POST", path, ["uploads"]),
        *[("PUT", path, ["partNumber", "uploadId"])] * 3,
        ("POST", path, ["uploadId"]),
    ], calls
    parts = sorted(int(r.query["partNumber"]) for r in proxy.recorded if "partNumber" in r.query)
    assert parts == [1, 2, 3]
    complete = proxy.recorded[-1]
    assert complete.headers["if-none-match"] == "*"
    assert not [r for r in proxy.recorded if "x-amz-copy-source" in r.headers]
    assert not [r for r in proxy.recorded if ".stowage-uploads" in r.path]
    assert _keys(s3_server, bucket) == ["big/report.bin"]
    assert _pending(s3_server, bucket) == []
    stored = s3_server.boto3().get_object(Bucket=bucket, Key="big/report.bin")
    assert stored["Body"].read() == data
    assert stored["ETag"].strip('"').endswith("-3")


def test_a_taken_name_is_refused_and_the_upload_aborted(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    driver = S3Driver(S3Options(**options, multipart_threshold=5 * _MiB))
    driver.put("taken.bin", io.BytesIO(b"first"), size=5, if_absent=True)
    for size in (6 * _MiB, None):
        with pytest.raises(AlreadyExists, match="taken"):
            driver.put("taken.bin", io.BytesIO(_body(6 * _MiB)), size=size, if_absent=True)
    assert b"".join(driver.get("taken.bin")) == b"first"
    assert _keys(s3_server, options["bucket_name"]) == ["taken.bin"]
    assert _pending(s3_server, options["bucket_name"]) == []


class _Breaking(io.RawIOBase):
    """A readable file that fails after ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0
        self.error = OSError("the source broke mid-stream")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent >= self.limit:
            raise self.error
        count = min(len(buffer), self.limit - self.sent)
        buffer[:count] = b"b" * count
        self.sent += count
        return count


@pytest.mark.parametrize("size", [None, 20 * _MiB], ids=["unknown-size", "known-size"])
def test_a_source_failing_midway_leaves_no_object_and_no_upload(
    options: dict[str, Any], s3_server: MotoServer, size: int | None
) -> None:
    driver = S3Driver(S3Options(**options, multipart_threshold=5 * _MiB))
    source = _Breaking(13 * _MiB)
    with pytest.raises(OSError, match="mid-stream") as raised:
        driver.put("broken.bin", source, size=size, if_absent=True)
    assert raised.value is source.error
    assert _keys(s3_server, options["bucket_name"]) == []
    assert _pending(s3_server, options["bucket_name"]) == []


def test_a_small_body_of_unknown_size_is_one_conditional_put(
    options: dict[str, Any], proxy: CountingProxy
) -> None:
    storage = _proxied(options, proxy)
    driver = storage.driver
    driver.put("small.txt", io.BytesIO(b"tiny"), size=None, if_absent=True)
    driver.put("empty.txt", io.BytesIO(b""), size=None, if_absent=True)
    assert [str(r) for r in proxy.recorded] == [
        f"PUT /{options['bucket_name']}/small.txt",
        f"PUT /{options['bucket_name']}/empty.txt",
    ]
    assert all(r.headers["if-none-match"] == "*" for r in proxy.recorded)
    with pytest.raises(AlreadyExists):
        driver.put("small.txt", io.BytesIO(b"again"), size=None, if_absent=True)


# -- what the object gets --------------------------------------------------------------------

_PARAMETERS = {
    "CacheControl": "max-age=600",
    "ContentDisposition": 'attachment; filename="report.bin"',
    "ContentLanguage": "fr-CA",
    "StorageClass": "STANDARD_IA",
    "Metadata": {"owner": "docs", "batch": "7"},
}


@pytest.mark.parametrize(
    "encryption",
    [
        {"server_side_encryption": "AES256"},
        {"server_side_encryption": "aws:kms", "sse_kms_key_id": "key-0123"},
    ],
    ids=["sse-s3", "sse-kms"],
)
def test_headers_metadata_and_encryption_reach_the_object(
    options: dict[str, Any], s3_server: MotoServer, encryption: dict[str, str]
) -> None:
    storage = S3Storage(
        **options, multipart_threshold=5 * _MiB, object_parameters=_PARAMETERS, **encryption
    )
    name = storage.save("dir/report.pdf", ContentFile(_body(6 * _MiB)))
    head = s3_server.boto3().head_object(Bucket=options["bucket_name"], Key=name)
    assert head["ContentType"] == "application/pdf"
    assert head["CacheControl"] == "max-age=600"
    assert head["ContentDisposition"] == 'attachment; filename="report.bin"'
    assert head["ContentLanguage"] == "fr-CA"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"owner": "docs", "batch": "7"}
    assert head["ServerSideEncryption"] == encryption["server_side_encryption"]
    assert encryption.get("sse_kms_key_id", "") in head.get("SSEKMSKeyId", "")
    assert head["ContentLength"] == 6 * _MiB
    info = storage.driver.head(name)
    assert info.metadata == {"owner": "docs", "batch": "7"}


@pytest.mark.parametrize(
    "settings",
    [
        {"server_side_encryption": "AES256"},
        {"server_side_encryption": "aws:kms", "sse_kms_key_id": "key-0123", "gzip": True},
        {"checksum_algorithm": "sha256"},
        {"object_parameters": {**_PARAMETERS, "ContentEncoding": "identity"}},
    ],
    ids=["sse-s3", "sse-kms-gzip", "checksum", "parameters"],
)
def test_the_create_sends_every_header_obstores_upload_sends(
    options: dict[str, Any], proxy: CountingProxy, settings: dict[str, Any]
) -> None:
    """CreateMultipartUpload carries what obstore's own multipart upload carries."""
    settings = {"object_parameters": _PARAMETERS, **settings}
    storage = _proxied(options, proxy, multipart_threshold=5 * _MiB, **settings)
    # Incompressible, so that gzip, where on, still leaves a body to upload in parts.
    data = ContentFile(os.urandom(6 * _MiB), name="site.css")
    storage.driver.put(  # obstore's multipart upload (an overwrite)
        "theirs.css", data, size=None, content_type="text/css", if_absent=False
    )
    data.seek(0)
    storage.driver.put("ours.css", data, size=None, content_type="text/css", if_absent=True)
    starts = [r for r in proxy.recorded if r.method == "POST" and "uploads" in r.query]
    assert [r.path.rsplit("/", 1)[1] for r in starts] == ["theirs.css", "ours.css"]
    theirs, ours = (_object_headers(r) for r in starts)
    assert ours == theirs
    assert ours["content-type"] == "text/css"
    if settings.get("gzip"):
        assert ours["content-encoding"] == "gzip"
    parts = [r for r in proxy.recorded if "partNumber" in r.query]
    theirs_parts, ours_parts = (
        [sorted(_object_headers(r)) for r in parts if r.path.endswith(name)]
        for name in ("theirs.css", "ours.css")
    )
    assert ours_parts == theirs_parts


# -- conditional copies -------------------------------------------------------------------


def _copy_requests(proxy: CountingProxy, bucket: str, key: str) -> list[tuple[str, str, str]]:
    """Say what each request did: its method, its key and what kind of call it was."""
    calls = []
    for r in proxy.recorded:
        kind = (
            "copy part"
            if "x-amz-copy-source" in r.headers
            else "complete"
            if "uploadId" in r.query and r.method == "POST"
            else "create"
            if "uploads" in r.query
            else "head"
            if r.method == "HEAD"
            else f"{r.method} {sorted(r.query)}"
        )
        calls.append((kind, r.path.removeprefix(f"/{bucket}/"), r.headers.get("if-none-match", "")))
    return calls


def test_a_conditional_copy_is_one_multipart_copy_carrying_the_sources_headers(
    options: dict[str, Any], s3_server: MotoServer, proxy: CountingProxy
) -> None:
    storage = _proxied(options, proxy, object_parameters=_PARAMETERS)
    data = _body(3 * _MiB)
    storage.save("staged/report.pdf", ContentFile(data))
    proxy.recorded.clear()
    storage.driver.copy_new("staged/report.pdf", "final/report.pdf")  # type: ignore[attr-defined]
    bucket = options["bucket_name"]
    assert _copy_requests(proxy, bucket, "final/report.pdf") == [
        ("head", "staged/report.pdf", ""),
        ("create", "final/report.pdf", ""),
        ("copy part", "final/report.pdf", ""),
        ("complete", "final/report.pdf", "*"),
    ]
    copied = next(r for r in proxy.recorded if "x-amz-copy-source" in r.headers)
    assert copied.headers["x-amz-copy-source"] == f"/{bucket}/staged/report.pdf"
    assert copied.headers["x-amz-copy-source-range"] == f"bytes=0-{len(data) - 1}"
    client = s3_server.boto3()
    source = client.head_object(Bucket=bucket, Key="staged/report.pdf")
    head = client.head_object(Bucket=bucket, Key="final/report.pdf")
    for field in ("ContentType", "CacheControl", "ContentDisposition", "ContentLanguage"):
        assert head[field] == source[field], field
    assert head["ContentType"] == "application/pdf"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"owner": "docs", "batch": "7"}
    assert client.get_object(Bucket=bucket, Key="final/report.pdf")["Body"].read() == data
    assert _pending(s3_server, bucket) == []


def test_a_large_copy_goes_in_equal_ranges_at_once(
    options: dict[str, Any],
    s3_server: MotoServer,
    proxy: CountingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stowage.drivers.s3.creates.COPY_PART", 6 * _MiB)
    storage = _proxied(options, proxy)
    data = _body(16 * _MiB + 1)
    storage.save("staged.bin", ContentFile(data))
    proxy.recorded.clear()
    storage.driver.copy_new("staged.bin", "final.bin")  # type: ignore[attr-defined]
    ranges = sorted(
        (int(r.query["partNumber"]), r.headers["x-amz-copy-source-range"])
        for r in proxy.recorded
        if "x-amz-copy-source" in r.headers
    )
    third = (16 * _MiB + 1 + 2) // 3
    assert ranges == [
        (1, f"bytes=0-{third - 1}"),
        (2, f"bytes={third}-{2 * third - 1}"),
        (3, f"bytes={2 * third}-{16 * _MiB}"),
    ]
    bucket = options["bucket_name"]
    assert b"".join(storage.driver.get("final.bin")) == data  # type: ignore[attr-defined]
    assert _pending(s3_server, bucket) == []


def test_an_empty_object_is_copied_whole(options: dict[str, Any], s3_server: MotoServer) -> None:
    storage = S3Storage(**options)
    storage.save("empty.txt", ContentFile(b""))
    storage.driver.copy_new("empty.txt", "copy.txt")  # type: ignore[attr-defined]
    assert storage.size("copy.txt") == 0
    assert _pending(s3_server, options["bucket_name"]) == []


def test_a_copy_onto_a_taken_name_is_refused_and_aborted(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    storage = S3Storage(**options)
    storage.save("first.txt", ContentFile(b"first"))
    storage.save("second.txt", ContentFile(b"second"))
    with pytest.raises(AlreadyExists):
        storage.driver.copy_new("first.txt", "second.txt")  # type: ignore[attr-defined]
    with storage.open("second.txt") as handle:
        assert handle.read() == b"second"
    assert _pending(s3_server, options["bucket_name"]) == []


# -- races ------------------------------------------------------------------------------------


class TestS3StorageInParts(StorageContract, AsyncStorageContract):
    """The kit with every body, a few bytes or more, uploaded in parts (same-name races too)."""

    secret_values = (SECRET_KEY,)
    # moto checks neither a presigned URL's expiry nor applies response-* overrides.
    server_checks_expiry = False
    server_applies_response_overrides = False

    @pytest.fixture
    def storage(self, serial_options: dict[str, Any]) -> S3Storage:
        return S3Storage(location="media", multipart_threshold=0, **serial_options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch


def test_concurrent_large_creates_of_one_key_leave_one_winner(
    serial_options: dict[str, Any], moto_serial: MotoServer
) -> None:
    driver = S3Driver(S3Options(**serial_options, multipart_threshold=5 * _MiB))
    bodies = [bytes([65 + i]) * (6 * _MiB) for i in range(4)]
    barrier = threading.Barrier(len(bodies))

    def create(body: bytes) -> str:
        barrier.wait()
        try:
            driver.put("race.bin", io.BytesIO(body), size=len(body), if_absent=True)
        except AlreadyExists:
            return "refused"
        return "created"

    with ThreadPoolExecutor(len(bodies)) as pool:
        outcomes = list(pool.map(create, bodies))
    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
    stored = b"".join(driver.get("race.bin"))
    assert stored == bodies[outcomes.index("created")]
    assert _pending(moto_serial, serial_options["bucket_name"]) == []


def test_concurrent_large_saves_of_one_name_keep_every_file(
    serial_options: dict[str, Any],
) -> None:
    storage = S3Storage(multipart_threshold=5 * _MiB, **serial_options)
    bodies = [bytes([97 + i]) * (6 * _MiB + i) for i in range(4)]

    async def scenario() -> list[str]:
        saves = [storage.asave("same.bin", ContentFile(body)) for body in bodies]
        return list(await asyncio.gather(*saves))

    names = asyncio.run(scenario())
    assert len(set(names)) == len(bodies)
    for name, body in zip(names, bodies, strict=True):
        with storage.open(name, "rb") as handle:
            assert handle.read() == body
    assert sorted(storage.listdir("")[1]) == sorted(names)


# -- failures on the wire ---------------------------------------------------------------------


@pytest.fixture
def faults(s3_server: MotoServer) -> Iterator[FaultProxy]:
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = FaultProxy(port)
    yield proxy
    proxy.close()


def _through(faults: FaultProxy, options: dict[str, Any], **extra: Any) -> S3Driver:
    endpoint = f"http://127.0.0.1:{faults.port}"
    driver = S3Driver(S3Options(**{**options, "endpoint_url": endpoint}, **extra))
    driver.probe_conditional_writes()
    return driver


#: Passes a connection through untouched (moto closes each after one response).
_PASS = Fault("stall", seconds=0)


def test_a_failed_part_is_sent_again(
    options: dict[str, Any], s3_server: MotoServer, faults: FaultProxy
) -> None:
    driver = _through(faults, options, multipart_threshold=5 * _MiB, multipart_concurrency=1)
    faults.inject(_PASS, Fault("status", status=503), Fault("reset"))
    data = _body(6 * _MiB)
    driver.put("retried.bin", io.BytesIO(data), size=len(data), if_absent=True)
    assert faults.injected == ["stall", "status", "reset"]
    stored = s3_server.boto3().get_object(Bucket=options["bucket_name"], Key="retried.bin")
    assert stored["Body"].read() == data
    assert _pending(s3_server, options["bucket_name"]) == []


def test_a_part_failing_every_time_aborts_the_upload(
    options: dict[str, Any], s3_server: MotoServer, faults: FaultProxy
) -> None:
    driver = _through(
        faults, options, multipart_threshold=5 * _MiB, multipart_concurrency=1, max_retries=1
    )
    faults.inject(_PASS, Fault("status", status=503), Fault("status", status=503))
    data = _body(6 * _MiB)
    with pytest.raises(ServiceUnavailable, match="part 1"):
        driver.put("failed.bin", io.BytesIO(data), size=len(data), if_absent=True)
    assert faults.pending() == 0
    assert _keys(s3_server, options["bucket_name"]) == []
    assert _pending(s3_server, options["bucket_name"]) == []


# -- memory -----------------------------------------------------------------------------------

_MEASURE = textwrap.dedent(
    """
    import io, json, sys
    from stowage.drivers.s3 import S3Driver, S3Options

    class Zeros(io.RawIOBase):
        def __init__(self, size):
            self.left = size
        def readable(self):
            return True
        def readinto(self, buffer):
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    def peak():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024

    options, size = json.loads(sys.argv[1]), int(sys.argv[2])
    driver = S3Driver(S3Options(**options))
    driver.put("warm.txt", io.BytesIO(b"warm"), size=4, if_absent=True)
    before = peak()
    info = driver.put("big.bin", Zeros(size), size=size, if_absent=True)
    print(json.dumps({"growth": peak() - before, "size": info.size}))
    """
)


def test_a_256_mib_create_holds_a_few_parts_in_memory(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    size = 256 * _MiB
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(options), str(size)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["size"] == size
    # Four parts of 8 MiB in flight by default; the bound is generous, not a tuning.
    assert figures["growth"] < 100, figures
    head = s3_server.boto3().head_object(Bucket=options["bucket_name"], Key="big.bin")
    assert head["ContentLength"] == size
