"""CRC32 checksums (``checksum_algorithm="crc32"``, AWS SDKs' default) on every upload path.

obstore sends no CRC32, so with it every upload is stowage's own: one PUT
for a small body, a multipart upload for a large one, create or overwrite,
atomic or best effort, sync or async. A recording proxy shows each request
carrying the checksum; boto3, beside the driver, shows what the object keeps
(moto stores the value sent, and joins the parts' values for a multipart
object as S3 does).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from stowage import S3Storage
from stowage.drivers.s3 import checksum_support
from stowage.drivers.s3.checksums import CHECKSUMS
from stowage.exceptions import AccessDenied
from tests.faults.http_proxy import CountingProxy, Recorded
from tests.servers.moto import MotoServer

_MiB = 1024 * 1024
_PART = 5 * _MiB


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    server = CountingProxy()
    yield server
    server.close()


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _composite(data: bytes) -> str:
    """S3's checksum of a multipart object: the CRC32 of its parts' CRC32s."""
    sums = b"".join(
        zlib.crc32(data[i : i + _PART]).to_bytes(4, "big") for i in range(0, len(data), _PART)
    )
    return base64.b64encode(zlib.crc32(sums).to_bytes(4, "big")).decode()


def _stored_checksum(server: MotoServer, bucket: str, key: str) -> str | None:
    head = server.boto3().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    value: str | None = head.get("ChecksumCRC32")
    return value


def _storage(
    options: dict[str, Any], proxy: CountingProxy, checksum: str | None = "crc32", **extra: Any
) -> S3Storage:
    storage = S3Storage(
        **options,
        proxies={"http": proxy.url},
        checksum_algorithm=checksum,
        multipart_threshold=_PART,
        multipart_chunksize=_PART,
        **extra,
    )
    if storage.driver.options.conditional_writes != "off":  # type: ignore[attr-defined]
        storage.driver.probe_conditional_writes()  # type: ignore[attr-defined]
    proxy.recorded.clear()
    return storage


def test_the_checksums_are_s3s_encoding() -> None:
    crc32, sha256 = CHECKSUMS["crc32"], CHECKSUMS["sha256"]
    assert crc32.of(b"hello") == "NhCmhg=="
    assert crc32.of(b"") == "AAAAAA=="
    assert sha256.of(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert (crc32.header, sha256.header) == ("x-amz-checksum-crc32", "x-amz-checksum-sha256")
    assert (crc32.element, sha256.element) == ("ChecksumCRC32", "ChecksumSHA256")


@pytest.mark.parametrize(
    "settings",
    [{}, {"file_overwrite": True}, {"conditional_writes": "off"}],
    ids=["atomic-create", "overwrite", "best-effort-create"],
)
def test_every_upload_carries_its_crc32(
    s3_server: MotoServer,
    s3_bucket: str,
    proxy: CountingProxy,
    settings: dict[str, Any],
) -> None:
    storage = _storage(s3_server.options(s3_bucket), proxy, **settings)
    small, large = b"small body", bytes(range(256)) * (11 * _MiB // 256)
    small_name = storage.save("small.txt", ContentFile(small))
    large_name = storage.save("large.bin", ContentFile(large))
    again = storage.save("large.bin", ContentFile(large))
    assert (again == "large.bin") is bool(settings.get("file_overwrite"))

    assert _stored_checksum(s3_server, s3_bucket, small_name) == _crc32(small)
    for name in (large_name, again):
        assert _stored_checksum(s3_server, s3_bucket, name) == _composite(large)
        assert storage.open(name).read() == large
    puts = [r for r in proxy.recorded if r.method == "PUT" and "x-amz-copy-source" not in r.headers]
    assert len(puts) == 1 + 3 + 3  # the small body, then 3 parts for each large one
    assert all(r.headers.get("x-amz-checksum-crc32") for r in puts), [str(r) for r in puts]
    starts = [r for r in proxy.recorded if r.method == "POST" and "uploads" in r.query]
    assert [r.headers.get("x-amz-checksum-algorithm") for r in starts] == ["CRC32", "CRC32"]


def test_asave_and_a_body_of_unknown_size_carry_it_too(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    storage = _storage(s3_server.options(s3_bucket), proxy)
    name = asyncio.run(storage.asave("async.txt", ContentFile(b"awaited")))
    assert _stored_checksum(s3_server, s3_bucket, name) == _crc32(b"awaited")
    info = storage.driver.put("unsized.txt", ContentFile(b"no size"), size=None, if_absent=True)
    assert info.size == len(b"no size")
    assert _stored_checksum(s3_server, s3_bucket, "unsized.txt") == _crc32(b"no size")


def test_a_copy_into_place_keeps_the_algorithm(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    """copy_new (how a direct upload reaches its name) is a multipart copy declaring CRC32."""
    storage = _storage(s3_server.options(s3_bucket), proxy)
    data = bytes(range(256)) * 64
    storage.save("staged.bin", ContentFile(data))
    storage.driver.copy_new("staged.bin", "final.bin")
    assert storage.open("final.bin").read() == data
    starts = [r for r in proxy.recorded if r.method == "POST" and "uploads" in r.query]
    assert [r.headers.get("x-amz-checksum-algorithm") for r in starts] == ["CRC32"]


def test_crc32_behind_a_proxy_stowage_cannot_use_is_refused(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    options = {**s3_server.options(s3_bucket), "proxies": {"http": "socks5://127.0.0.1:9"}}
    with pytest.raises(ImproperlyConfigured, match=r"checksum_algorithm.*socks5"):
        _ = S3Storage(**options, checksum_algorithm="crc32").driver
    # The algorithms obstore sends itself still work there.
    assert S3Storage(**options, checksum_algorithm="sha256").driver is not None


# -- "auto", the default: CRC32 on multipart uploads where the server takes them ------------

_LARGE = bytes(range(256)) * (11 * _MiB // 256)
_REFUSED = b"<Error><Code>InvalidArgument</Code><Message>checksums not supported</Message></Error>"


def _carries_checksum(request: Recorded) -> bool:
    """Tell whether ``request`` names or carries a CRC32 (obstore's deletes carry a SHA-256)."""
    return bool({"x-amz-checksum-algorithm", "x-amz-checksum-crc32"} & set(request.headers))


def _pending(server: MotoServer, bucket: str) -> list[str]:
    uploads = server.boto3().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [upload["Key"] for upload in uploads]


def test_auto_sends_crc32_with_each_part_where_the_server_takes_them(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    options = s3_server.options(s3_bucket)
    storage = _storage(options, proxy, "auto")
    overwriting = _storage(options, proxy, "auto", file_overwrite=True)
    assert S3Storage(**options).driver_options.checksum_algorithm == "auto"  # type: ignore[attr-defined]
    storage.save("small.txt", ContentFile(b"small body"))
    storage.save("large.bin", ContentFile(_LARGE))
    assert overwriting.save("large.bin", ContentFile(_LARGE[::-1])) == "large.bin"

    # Asked once for the bucket: one part, completed with its checksum, then deleted.
    probe = [r for r in proxy.recorded if "checksum-probe" in r.path]
    assert [r.method for r in probe] == ["POST", "PUT", "POST", "DELETE"]
    assert probe[0].headers["x-amz-checksum-algorithm"] == "CRC32"
    assert checksum_support.ACCEPTS_CRC32[(options["endpoint_url"], s3_bucket)] is True
    # Both large bodies (create and overwrite) went in parts carrying their CRC32s;
    # the small one is obstore's single PUT, with none.
    rest = [r for r in proxy.recorded if "checksum-probe" not in r.path]
    parts = [r for r in rest if r.method == "PUT" and "partNumber" in r.query]
    assert len(parts) == 6
    assert all(r.headers.get("x-amz-checksum-crc32") for r in parts)
    small = [r for r in rest if r.method == "PUT" and r.path.endswith("/small.txt")]
    assert len(small) == 1
    assert not _carries_checksum(small[0])
    assert _stored_checksum(s3_server, s3_bucket, "large.bin") == _composite(_LARGE[::-1])
    assert storage.open("large.bin").read() == _LARGE[::-1]
    assert _pending(s3_server, s3_bucket) == []


def test_auto_sends_none_where_the_server_refuses_them(
    s3_server: MotoServer,
    s3_bucket: str,
    proxy: CountingProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy.answer = lambda request: (400, _REFUSED) if _carries_checksum(request) else None
    options = s3_server.options(s3_bucket)
    storage = _storage(options, proxy, "auto")
    with caplog.at_level(logging.INFO, logger="stowage.s3"):
        name = storage.save("large.bin", ContentFile(_LARGE))
        again = storage.save("large.bin", ContentFile(_LARGE[::-1]))
    assert storage.open(name).read() == _LARGE
    assert storage.open(again).read() == _LARGE[::-1]
    assert "refuses CRC32 checksums" in caplog.text
    assert checksum_support.ACCEPTS_CRC32[(options["endpoint_url"], s3_bucket)] is False
    # Only the probe's start carried a checksum, and it left nothing behind.
    carried = [r for r in proxy.recorded if _carries_checksum(r)]
    assert [(r.method, "checksum-probe" in r.path) for r in carried] == [("POST", True)]
    listing = s3_server.boto3().list_objects_v2(Bucket=s3_bucket)
    assert sorted(item["Key"] for item in listing["Contents"]) == sorted([name, again])
    assert _pending(s3_server, s3_bucket) == []


def test_a_probe_the_bucket_denies_says_how_to_skip_it(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    denied = b"<Error><Code>AccessDenied</Code><Message>no writes here</Message></Error>"
    proxy.answer = lambda request: (403, denied) if "checksum-probe" in request.path else None
    options = s3_server.options(s3_bucket)
    with pytest.raises(AccessDenied, match=r"checksum_algorithm=None"):
        _storage(options, proxy, "auto").save("large.bin", ContentFile(_LARGE))
    assert (options["endpoint_url"], s3_bucket) not in checksum_support.ACCEPTS_CRC32
    # As the message says: without checksums there is no probe.
    name = _storage(options, proxy, None).save("large.bin", ContentFile(_LARGE))
    assert not any("checksum-probe" in r.path or _carries_checksum(r) for r in proxy.recorded)
    assert _stored_checksum(s3_server, s3_bucket, name) is None
