"""The GCS driver and GCSStorage under the conformance kit, on fake-gcs-server.

Every client here gets explicit credentials: anonymous requests to the
emulator, and a service-account key generated for the test run to sign URLs.
No default credential chain runs, so nothing probes a cloud metadata endpoint.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import google.auth
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import override_settings
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs  # type: ignore[import-untyped]

from stowage import GCSStorage
from stowage.drivers.base import Capability
from stowage.drivers.gcs import GCSDriver, GCSOptions
from stowage.drivers.gcs.json_api import SessionApi
from stowage.drivers.gcs.uploads import UploadSource
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    NotFound,
    ServiceError,
    ServiceUnavailable,
    UnsupportedOperation,
)
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    StorageContract,
    SubclassContract,
)
from stowage.testing.hostile_names import HostileNamesContract
from stowage.testing.url_contract import Fetch, http_fetch
from tests.servers._process import free_port
from tests.servers.fake_gcs import FakeGCS

_MiB = 1024 * 1024
_EMAIL = "signer@stowage-tests.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """Return an RSA key made for this test run, standing in for a service-account key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def service_account_info(signing_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Return a service-account key file's content around that key."""
    pem = signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "stowage-tests",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": _EMAIL,
        "client_id": "1",
        # Never contacted: API requests are anonymous, the key only signs.
        "token_uri": "http://127.0.0.1:9/token",
    }


@pytest.fixture
def options(
    fake_gcs: FakeGCS, gcs_bucket: str, service_account_info: dict[str, str]
) -> dict[str, Any]:
    """Return OPTIONS for a storage on the test bucket."""
    return {
        "bucket_name": gcs_bucket,
        "api_endpoint": fake_gcs.url,
        "anonymous": True,
        "credentials": service_account_info,
        "retry_timeout": 5,
    }


@pytest.fixture
def official(fake_gcs: FakeGCS, gcs_bucket: str) -> Iterator[Any]:
    """Return the official client's bucket object, used independently of stowage."""
    client = gcs.Client(
        project="stowage-tests",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": fake_gcs.url},
    )
    yield client.bucket(gcs_bucket)
    client.close()


@pytest.fixture(autouse=True)
def no_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if Application Default Credentials run: they may probe a metadata server."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Application Default Credentials were consulted")

    monkeypatch.setattr(google.auth, "default", refuse)


def _read(driver: GCSDriver, key: str, **kwargs: Any) -> bytes:
    download = driver.get(key, **kwargs)
    try:
        return b"".join(download)
    finally:
        download.close()


# -- the conformance kit ------------------------------------------------------------


class TestGCSDriver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> Iterator[GCSDriver]:
        driver = GCSDriver(GCSOptions(**options))
        yield driver
        driver.close()


class TestGCSStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    secret_values = ("PRIVATE KEY", "0123456789abcdef")
    # fake-gcs-server serves signed URLs without checking expiry or applying overrides.
    server_checks_expiry = False
    server_applies_response_overrides = False

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> GCSStorage:
        return GCSStorage(location="media", **options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch

    @pytest.fixture
    def broken_storage(self, options: dict[str, Any]) -> GCSStorage:
        closed = f"http://127.0.0.1:{free_port()}"
        return GCSStorage(
            location="media", **{**options, "api_endpoint": closed, "retry_timeout": 0}
        )


class TestGCSPublicStorage(StorageContract):
    """Unsigned URLs (querystring_auth off), the other branch of url()."""

    # The test server serves unsigned URLs too; it checks no expiry and applies no overrides.
    server_checks_expiry = False
    server_applies_response_overrides = False

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> GCSStorage:
        return GCSStorage(querystring_auth=False, location="pub", **options)


# -- interoperability with the official client ------------------------------------------


def test_official_client_reads_what_stowage_wrote(options: dict[str, Any], official: Any) -> None:
    storage = GCSStorage(
        location="media",
        object_parameters={"cache_control": "max-age=600", "metadata": {"owner": "stowage"}},
        **options,
    )
    name = storage.save("docs/report.pdf", ContentFile(b"%PDF-1.7 body"))
    blob = official.get_blob(f"media/{name}")
    assert blob.download_as_bytes() == b"%PDF-1.7 body"
    assert blob.content_type == "application/pdf"
    assert blob.cache_control == "max-age=600"
    assert blob.metadata == {"owner": "stowage"}


def test_stowage_reads_what_the_official_client_wrote(
    options: dict[str, Any], official: Any
) -> None:
    blob = official.blob("media/from-sdk/data.json")
    blob.cache_control = "no-cache"
    blob.metadata = {"source": "sdk", "ünï": "cödé"}
    blob.upload_from_string(b'{"a": 1}', content_type="application/json")
    storage = GCSStorage(location="media", **options)
    with storage.open("from-sdk/data.json") as handle:
        assert handle.read() == b'{"a": 1}'
    assert storage.size("from-sdk/data.json") == 8
    assert storage.listdir("from-sdk") == ([], ["data.json"])
    info = storage.driver.head("media/from-sdk/data.json")
    assert info.content_type == "application/json"
    assert info.cache_control == "no-cache"
    assert dict(info.metadata) == {"source": "sdk", "ünï": "cödé"}
    assert info.created is not None


def test_large_upload_is_resumable_and_intact(options: dict[str, Any], official: Any) -> None:
    driver = GCSDriver(GCSOptions(**options, blob_chunk_size=1 * _MiB))
    data = bytes(range(256)) * (9 * 4096 + 17)  # past the 8 MiB single-request limit
    info = driver.put("big.bin", io.BytesIO(data), content_type="application/x-test")
    assert info.size == len(data)
    blob = official.get_blob("big.bin")
    assert blob.content_type == "application/x-test"
    assert blob.size == len(data)
    assert hashlib.sha256(blob.download_as_bytes()).digest() == hashlib.sha256(data).digest()
    assert _read(driver, "big.bin", start=len(data) - 5) == data[-5:]


def test_a_large_body_of_known_size_goes_up_in_one_streamed_request(
    options: dict[str, Any], official: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = GCSDriver(GCSOptions(**options))
    data = bytes(range(256)) * (9 * 4096 + 17)  # past the 8 MiB single-request limit
    driver.put("warm-up", io.BytesIO(b"x"))
    requests = _record_requests(driver, monkeypatch)
    info = driver.put(
        "streamed.bin",
        io.BytesIO(data),
        size=len(data),
        content_type="application/x-test",
        cache_control="max-age=60",
        metadata={"origin": "test"},
    )
    assert len(requests) == 2, requests  # the session's start, then the whole body
    assert info.size == len(data)
    blob = official.get_blob("streamed.bin")
    assert (blob.content_type, blob.cache_control) == ("application/x-test", "max-age=60")
    assert blob.metadata == {"origin": "test"}
    assert hashlib.sha256(blob.download_as_bytes()).digest() == hashlib.sha256(data).digest()
    with pytest.raises(AlreadyExists):
        driver.put("streamed.bin", io.BytesIO(data), size=len(data), if_absent=True)


def test_a_stream_shorter_than_its_size_is_refused_as_such(options: dict[str, Any]) -> None:
    driver = GCSDriver(GCSOptions(**options))
    with pytest.raises(ValueError, match="ended after"):
        driver.put("short.bin", io.BytesIO(b"a" * 9 * _MiB), size=10 * _MiB)
    with pytest.raises(NotFound):
        driver.head("short.bin")


def test_a_streamed_upload_holds_little_memory(options: dict[str, Any]) -> None:
    import tracemalloc

    class SeekableZeros(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.size, self.position = size, 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
            self.position = offset if whence == io.SEEK_SET else self.size + offset
            return self.position

        def tell(self) -> int:
            return self.position

        def readinto(self, buffer: Any) -> int:
            count = min(len(buffer), self.size - self.position)
            buffer[:count] = bytes(count)
            self.position += count
            return count

    driver = GCSDriver(GCSOptions(**options))
    driver.put("warm-up", io.BytesIO(b"x"))
    tracemalloc.start()
    try:
        driver.put("zeros.bin", SeekableZeros(64 * _MiB), size=64 * _MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert driver.head("zeros.bin").size == 64 * _MiB
    assert peak < 4 * _MiB, peak


def test_large_atomic_create_refuses_a_taken_name(options: dict[str, Any]) -> None:
    driver = GCSDriver(GCSOptions(**options))
    body = b"x" * (9 * _MiB)
    driver.put("taken.bin", io.BytesIO(b"first"), if_absent=True)
    with pytest.raises(AlreadyExists):
        driver.put("taken.bin", io.BytesIO(body), if_absent=True)
    assert _read(driver, "taken.bin") == b"first"


def test_copy_is_server_side_and_keeps_properties(options: dict[str, Any], official: Any) -> None:
    driver = GCSDriver(GCSOptions(**options))
    assert Capability.SERVER_COPY in driver.capabilities
    driver.put("a.txt", io.BytesIO(b"abc"), content_type="text/plain", metadata={"k": "v"})
    info = driver.copy("a.txt", "b/a.txt")
    assert info.size == 3
    copied = official.get_blob("b/a.txt")
    assert copied.content_type == "text/plain"
    assert copied.metadata == {"k": "v"}
    with pytest.raises(NotFound):
        driver.copy("missing.txt", "c.txt")


def test_listing_skips_folder_placeholders(options: dict[str, Any], official: Any) -> None:
    official.blob("media/folder/").upload_from_string(b"")
    official.blob("media/folder/inside.txt").upload_from_string(b"x")
    storage = GCSStorage(location="media", **options)
    assert storage.listdir("folder") == ([], ["inside.txt"])
    assert storage.listdir("") == (["folder"], [])
    assert storage.exists("folder")


def test_upload_memory_stays_bounded(options: dict[str, Any]) -> None:
    """A 64 MiB body goes up holding a few 8 MiB chunks at most, never the whole."""
    import tracemalloc

    class Zeros:
        def __init__(self, size: int) -> None:
            self.left = size

        def read(self, size: int = -1, /) -> bytes:
            count = min(size, self.left)
            self.left -= count
            return bytes(count)

    class RawZeros(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    driver = GCSDriver(GCSOptions(**options))
    driver.put("warm-up", io.BytesIO(b"x"))
    # A plain reader, and a file object (read in whole chunks).
    for source in (Zeros(64 * _MiB), io.BufferedReader(RawZeros(64 * _MiB))):
        tracemalloc.start()
        try:
            driver.put("zeros.bin", source)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert driver.head("zeros.bin").size == 64 * _MiB
        assert peak < 28 * _MiB, peak


def test_ranged_reads_take_one_or_two_requests(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = GCSDriver(GCSOptions(**options))
    driver.put("small.txt", io.BytesIO(b"0123456789"), content_type="text/plain")
    requests = _record_requests(driver, monkeypatch)

    download = driver.get("small.txt", start=2, end=64 * 1024)
    assert download.info.size == 10
    assert download.info.content_type == "text/plain"
    assert b"".join(download) == b"23456789"
    assert len(requests) == 1  # the object ended inside the range: no metadata needed

    requests.clear()
    download = driver.get("small.txt", start=0, end=4)
    assert download.info.size == 10  # the object goes on: the size comes from metadata
    assert download.info.modified is not None
    assert b"".join(download) == b"0123"
    assert len(requests) == 2

    requests.clear()
    assert _read(driver, "small.txt", start=10, end=20) == b""
    assert _read(driver, "small.txt", start=3) == b"3456789"


@pytest.mark.parametrize("by_listing", [True, False])
def test_exists_either_way(options: dict[str, Any], by_listing: bool) -> None:
    """One listing, or the metadata then a listing of key/: the same answers."""
    driver = GCSDriver(GCSOptions(**options, exists_by_listing=by_listing))
    for key in ("d/sub/f.txt", "d/name-2", "d/name.bak", "d/name"):
        driver.put(key, io.BytesIO(b"x"))
    for key, expected in (("d", True), ("d/sub", True), ("d/name", True), ("d/nam", False)):
        assert driver.exists(key) is expected, key


def test_exists_reads_metadata_once_the_bucket_refuses_listings(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from stowage.drivers.gcs import driver as gcs_driver

    driver = GCSDriver(GCSOptions(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"))
    refusals: list[str] = []
    list_page = gcs_driver._list_page

    def refused(bucket: Any, prefix: str, *args: Any, **kwargs: Any) -> Any:
        if prefix == "d/f.txt":
            refusals.append(prefix)
            raise AccessDenied("listing refused")
        return list_page(bucket, prefix, *args, **kwargs)

    monkeypatch.setattr(gcs_driver, "_list_page", refused)
    assert driver.exists("d/f.txt")
    assert driver.exists("d/f.txt")
    assert not driver.exists("d/missing")
    assert refusals == ["d/f.txt"]  # refused once, then the metadata
    assert "exists_by_listing=False" in caplog.text


def _record_requests(driver: GCSDriver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the requests the driver sends (all go on its pool)."""
    requests: list[str] = []
    api = driver._connection.json
    send = api.pool.send

    def sent(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(f"{method} {target}")
        return send(method, target, *args, **kwargs)

    monkeypatch.setattr(api.pool, "send", sent)
    return requests


def test_exists_takes_one_request(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    driver = GCSDriver(GCSOptions(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"))
    requests = _record_requests(driver, monkeypatch)
    for key in ("d", "d/f.txt", "d/missing"):
        requests.clear()
        driver.exists(key)
        assert len(requests) == 1, requests
        assert requests[0].startswith("GET /storage/v1/b/"), requests


def test_no_request_is_made_but_those_asked_for(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # google-cloud-storage 3.17 looked a bucket up in a background thread, for
    # tracing labels, at a client's first call; no such request may be sent.
    driver = GCSDriver(GCSOptions(**options))
    driver._connection.connect()
    requests = _record_requests(driver, monkeypatch)
    driver.put("f.txt", io.BytesIO(b"x"))
    driver.exists("f.txt")
    time.sleep(0.5)  # a background lookup would land within this time
    assert len(requests) == 2, requests


# -- gzip ---------------------------------------------------------------------------------


def test_gzip_stores_compressed_and_reads_back_plain(
    options: dict[str, Any], official: Any
) -> None:
    storage = GCSStorage(gzip=True, **options)
    css = b"body { color: red; }\n" * 2000
    name = storage.save("static/site.css", ContentFile(css))
    blob = official.get_blob(name)
    assert blob.content_encoding == "gzip"
    stored = blob.download_as_bytes(raw_download=True)
    assert stored[:2] == b"\x1f\x8b"
    assert len(stored) < len(css) // 10
    assert gzip.decompress(stored) == css
    assert storage.size(name) == len(css)
    with storage.open(name) as handle:
        assert handle.read() == css
        handle.seek(len(css) - 10)
        assert handle.read() == css[-10:]
    plain = storage.save("notes.txt", ContentFile(b"not compressed"))
    assert official.get_blob(plain).content_encoding is None


def test_gzip_reads_span_several_requests(options: dict[str, Any]) -> None:
    driver = GCSDriver(GCSOptions(**options, gzip=True, blob_chunk_size=256 * 1024))
    data = b"".join(
        f"line {i} {hashlib.md5(str(i).encode()).hexdigest()}\n".encode() for i in range(80_000)
    )
    driver.put("big.js", io.BytesIO(data), content_type="text/javascript")
    assert driver.head("big.js").size == len(data)
    assert _read(driver, "big.js") == data
    assert _read(driver, "big.js", start=1_000_000, end=1_000_050) == data[1_000_000:1_000_050]
    assert _read(driver, "big.js", start=len(data) + 5) == b""


def test_gzip_object_from_another_client(options: dict[str, Any], official: Any) -> None:
    css = b"a { b: c }\n" * 500
    blob = official.blob("foreign.css")
    blob.content_encoding = "gzip"
    blob.upload_from_string(gzip.compress(css), content_type="text/css")
    driver = GCSDriver(GCSOptions(**options))
    assert driver.head("foreign.css").size == len(css)  # from the gzip trailer
    assert _read(driver, "foreign.css") == css


def test_a_small_save_carries_the_checksum_the_service_computes(
    options: dict[str, Any], official: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service refuses a body whose checksum differs; the emulator does not check it."""
    driver = GCSDriver(GCSOptions(**options))
    api = driver._connection.json
    sent: list[dict[str, Any]] = []
    upload = api.upload

    def capture(path: str, query: Any, body: tuple[bytes, ...], content_type: str) -> Any:
        head = body[0].decode()
        sent.append(json.loads(head[head.index("{") : head.rindex("}") + 1]))
        return upload(path, query, body, content_type)

    monkeypatch.setattr(api, "upload", capture)
    data = bytes(range(256)) * 5000
    driver.put("sum.bin", io.BytesIO(data), content_type="application/x-test")
    (fields,) = sent
    stored = official.get_blob("sum.bin")
    assert fields["crc32c"] == stored.crc32c
    assert (fields["name"], fields["contentType"]) == ("sum.bin", "application/x-test")
    assert stored.download_as_bytes() == data


def test_requests_go_through_the_clients_session_where_the_pool_cannot_go(
    options: dict[str, Any], official: Any
) -> None:
    """Behind a proxy or mutual TLS, google-auth's session sends the same requests, alike."""
    driver = GCSDriver(GCSOptions(**options, blob_chunk_size=256 * 1024))
    css = b"a { b: c }\n" * 50_000
    blob = official.blob("d/site.css")
    blob.content_encoding = "gzip"
    blob.upload_from_string(gzip.compress(css), content_type="text/css")
    driver.put("d/small.txt", io.BytesIO(b"0123456789"), content_type="text/plain")
    from google.auth.transport.requests import AuthorizedSession

    conn = driver._connection
    conn.connect()
    session = AuthorizedSession(conn.credentials)
    conn._json = SessionApi(conn.base_url, session, 5)
    requests: list[str] = []
    session.hooks["response"].append(lambda answer, *a, **k: requests.append(answer.url))

    assert _read(driver, "d/small.txt", start=2, end=6) == b"2345"
    assert driver.head("d/small.txt").size == 10
    assert driver.head("d/site.css").size == len(css)
    assert _read(driver, "d/site.css") == css
    assert _read(driver, "d/site.css", start=300_000, end=300_011) == css[300_000:300_011]
    assert driver.exists("d")
    assert not driver.exists("d/missing")
    assert sorted(name for name, _ in driver.list_names("d")) == ["d/site.css", "d/small.txt"]
    with pytest.raises(NotFound):
        driver.head("d/missing")
    driver.put("d/new.txt", io.BytesIO(b"new"), content_type="text/plain", if_absent=True)
    with pytest.raises(AlreadyExists):
        driver.put("d/new.txt", io.BytesIO(b"other"), if_absent=True)
    assert official.get_blob("d/new.txt").download_as_bytes() == b"new"
    driver.delete("d/new.txt")
    driver.delete("d/new.txt")  # already gone: not an error
    assert official.get_blob("d/new.txt") is None
    large = bytes(range(256)) * (9 * 4096 + 3)
    driver.put("d/streamed.bin", io.BytesIO(large), size=len(large))
    driver.put("d/chunked.bin", _OneRead(large))
    for name in ("d/streamed.bin", "d/chunked.bin"):
        assert official.get_blob(name).download_as_bytes() == large
    sent = " ".join(requests)
    assert "/download/storage/v1/" in sent
    assert "/upload/storage/v1/" in sent


# -- URLs ---------------------------------------------------------------------------------


def _verify_signature(url: str, key: rsa.RSAPrivateKey, method: str = "GET") -> dict[str, str]:
    """Check a V4 signature as GCS would, from the URL alone; return its query."""
    parts = urlsplit(url)
    unsigned, _, signature = parts.query.rpartition("&X-Goog-Signature=")
    query = dict(parse_qsl(parts.query))
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    canonical = "\n".join(
        [method, parts.path, unsigned, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            query["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    try:
        key.public_key().verify(
            binascii.unhexlify(signature), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        pytest.fail(f"the signature of {url} does not verify")
    return query


def test_signed_url_is_v4_and_verifies(
    options: dict[str, Any], fake_gcs: FakeGCS, gcs_bucket: str, signing_key: rsa.RSAPrivateKey
) -> None:
    storage = GCSStorage(location="media", **options)
    name = storage.save("dir/a file+1.txt", ContentFile(b"signed body"))
    url = storage.url(name)
    assert url.startswith(f"{fake_gcs.url}/{gcs_bucket}/media/dir/a%20file%2B1.txt?")
    query = _verify_signature(url, signing_key)
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Credential"].startswith(f"{_EMAIL}/")
    assert query["X-Goog-Credential"].endswith("/auto/storage/goog4_request")
    assert query["X-Goog-Expires"] == "3600"
    assert query["X-Goog-SignedHeaders"] == "host"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"signed body"


def test_signed_url_expiry_and_overrides(
    options: dict[str, Any], signing_key: rsa.RSAPrivateKey
) -> None:
    storage = GCSStorage(querystring_expire=300, **options)
    name = storage.save("report.csv", ContentFile(b"a,b\n"))
    assert "X-Goog-Expires=300&" in storage.url(name)
    url = storage.url(
        name,
        expire=dt.timedelta(minutes=2),
        parameters={"ResponseContentDisposition": 'attachment; filename="r.csv"'},
    )
    query = _verify_signature(url, signing_key)
    assert query["X-Goog-Expires"] == "120"
    assert query["response-content-disposition"] == 'attachment; filename="r.csv"'
    put_url = storage.url("upload.bin", method="PUT", expire=60)
    _verify_signature(put_url, signing_key, method="PUT")
    with pytest.raises(ValueError, match="7 days"):
        storage.url(name, expire=dt.timedelta(days=8))


def test_signed_url_on_a_custom_domain(
    options: dict[str, Any], signing_key: rsa.RSAPrivateKey
) -> None:
    storage = GCSStorage(location="media", custom_domain="cdn.example.com", **options)
    url = storage.url("img/a.png")
    assert url.startswith("https://cdn.example.com/media/img/a.png?X-Goog-Algorithm=")
    _verify_signature(url, signing_key)
    public = GCSStorage(
        location="media", custom_domain="cdn.example.com", querystring_auth=False, **options
    )
    assert public.url("img/a.png") == "https://cdn.example.com/media/img/a.png"


def test_public_url_fetches_the_body(
    options: dict[str, Any], fake_gcs: FakeGCS, gcs_bucket: str, official: Any
) -> None:
    storage = GCSStorage(querystring_auth=False, default_acl="publicRead", **options)
    name = storage.save("pub/x y.txt", ContentFile(b"public"))
    url = storage.url(name)
    assert url == f"{fake_gcs.url}/{gcs_bucket}/pub/x%20y.txt"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"public"
    blob = official.blob(name)
    blob.reload(projection="full")
    grants = {(entry["entity"], entry["role"]) for entry in blob._properties["acl"]}
    assert ("allUsers", "READER") in grants


def test_signing_without_a_key_says_what_to_do(fake_gcs: FakeGCS, gcs_bucket: str) -> None:
    storage = GCSStorage(bucket_name=gcs_bucket, api_endpoint=fake_gcs.url, anonymous=True)
    with pytest.raises(UnsupportedOperation, match="iam_sign_blob") as caught:
        storage.url("a.txt")
    assert "querystring_auth" in str(caught.value)
    assert isinstance(caught.value, NotImplementedError)
    unsigned = GCSStorage(
        bucket_name=gcs_bucket, api_endpoint=fake_gcs.url, anonymous=True, querystring_auth=False
    )
    assert unsigned.url("a.txt") == f"{fake_gcs.url}/{gcs_bucket}/a.txt"


def test_iam_sign_blob_needs_a_service_account(options: dict[str, Any]) -> None:
    options = {**options, "credentials": AnonymousCredentials()}  # type: ignore[no-untyped-call]
    storage = GCSStorage(iam_sign_blob=True, **options)
    with pytest.raises(ConfigurationError, match="sa_email"):
        storage.url("a.txt")


# -- credentials, settings and options ----------------------------------------------------


def test_credentials_from_a_key_file(
    options: dict[str, Any],
    service_account_info: dict[str, str],
    tmp_path: Any,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    import json

    path = tmp_path / "key.json"
    path.write_text(json.dumps(service_account_info))
    storage = GCSStorage(**{**options, "credentials": str(path)})
    _verify_signature(storage.url("a.txt"), signing_key)
    storage = GCSStorage(**{**options, "credentials": path})
    _verify_signature(storage.url("a.txt"), signing_key)


def test_emulator_variable_means_anonymous_requests(
    fake_gcs: FakeGCS, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.url.removeprefix("http://"))
    storage = GCSStorage(bucket_name=gcs_bucket, querystring_auth=False)
    name = storage.save("env.txt", ContentFile(b"via env"))
    with storage.open(name) as handle:
        assert handle.read() == b"via env"
    assert storage.url(name) == f"{fake_gcs.url}/{gcs_bucket}/env.txt"


@pytest.mark.parametrize(
    "credentials",
    [
        {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"},
        {"type": "external_account", "audience": "x", "private_key": "c2VjcmV0"},
        "/no/such/key.json",
    ],
)
def test_bad_credentials_fail_clearly_without_secrets(
    options: dict[str, Any], credentials: Any
) -> None:
    storage = GCSStorage(**{**options, "credentials": credentials})
    with pytest.raises(ConfigurationError, match="'credentials'") as caught:
        storage.exists("a.txt")
    assert "c2VjcmV0" not in str(caught.value)
    assert "c2VjcmV0" not in repr(storage)


def test_django_storages_settings_are_fallbacks(
    fake_gcs: FakeGCS, gcs_bucket: str, official: Any, service_account_info: dict[str, str]
) -> None:
    with override_settings(
        GS_BUCKET_NAME=gcs_bucket,
        GS_PROJECT_ID="from-settings",
        GS_CREDENTIALS=service_account_info,
        GS_LOCATION="legacy",
        GS_QUERYSTRING_AUTH=False,
        GS_EXPIRATION=900,
        GS_FILE_OVERWRITE=True,
        GS_OBJECT_PARAMETERS={"cache_control": "max-age=86400"},
        GS_DEFAULT_ACL="publicRead",
        GS_IS_GZIPPED=True,
        GZIP_CONTENT_TYPES=("text/plain",),
        GS_MAX_MEMORY_SIZE=1 * _MiB,
        GS_BLOB_CHUNK_SIZE=512 * 1024,
        GS_IAM_SIGN_BLOB=False,
        GS_SA_EMAIL="someone@example.iam.gserviceaccount.com",
    ):
        storage = GCSStorage(api_endpoint=fake_gcs.url, anonymous=True)
        explicit = GCSStorage(
            api_endpoint=fake_gcs.url, anonymous=True, location="explicit", expiration=60
        )
    driver_options = storage.driver_options
    assert isinstance(driver_options, GCSOptions)
    assert driver_options.bucket_name == gcs_bucket
    assert driver_options.project_id == "from-settings"
    assert driver_options.default_acl == "publicRead"
    assert driver_options.blob_chunk_size == 512 * 1024
    assert driver_options.gzip_content_types == ("text/plain",)
    assert driver_options.sa_email == "someone@example.iam.gserviceaccount.com"
    assert storage.options.querystring_expire == 900
    assert storage.options.max_memory_size == 1 * _MiB
    assert storage.options.file_overwrite is True
    assert explicit.options.location == "explicit"
    assert explicit.options.querystring_expire == 60
    assert storage.save("a.txt", ContentFile(b"one")) == "a.txt"
    assert storage.save("a.txt", ContentFile(b"two")) == "a.txt"  # overwrites
    blob = official.get_blob("legacy/a.txt")
    assert blob.cache_control == "max-age=86400"
    assert blob.content_encoding == "gzip"
    assert storage.url("a.txt").endswith(f"/{gcs_bucket}/legacy/a.txt")
    with storage.open("a.txt") as handle:
        assert handle.read() == b"two"


def test_aliases_cannot_be_given_twice(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="mean the same"):
        GCSStorage(expiration=60, querystring_expire=60, **options)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"bucket_name": None}, "bucket_name"),
        ({"bucket_name": ""}, "bucket_name"),
        ({"api_endpoint": "127.0.0.1:4443"}, "api_endpoint"),
        ({"blob_chunk_size": 1000}, "blob_chunk_size"),
        ({"blob_chunk_size": "8MiB"}, "blob_chunk_size"),
        ({"default_acl": "public"}, "default_acl"),
        ({"object_parameters": {"colour": "red"}}, "colour"),
        ({"object_parameters": {"metadata": {"n": 1}}}, "metadata"),
        ({"object_parameters": {"acl": "world"}}, "acl"),
        ({"object_parameters": {"cache_control": 60}}, "cache_control"),
        ({"timeout": 0}, "timeout"),
        ({"retry_timeout": -1}, "retry_timeout"),
        ({"credentials": 42}, "credentials"),
        ({"anonymous": "yes"}, "anonymous"),
        ({"gzip_content_types": "text/css"}, "gzip_content_types"),
        ({"bucket": "x"}, "bucket"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, Any], changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        GCSStorage(**{**options, **changes})


def test_missing_bucket_setting_is_reported(fake_gcs: FakeGCS) -> None:
    with pytest.raises(ConfigurationError, match="GS_BUCKET_NAME"):
        GCSStorage(api_endpoint=fake_gcs.url, anonymous=True)


def test_secrets_stay_out_of_repr_and_deconstruct(options: dict[str, Any]) -> None:
    storage = GCSStorage(**options)
    deconstructed = repr(storage.deconstruct())  # type: ignore[attr-defined]
    shown = repr(storage) + deconstructed + repr(storage.driver_options)
    assert "PRIVATE KEY" not in shown
    assert "credentials" not in deconstructed


# -- errors -------------------------------------------------------------------------------


def test_errors_are_translated(options: dict[str, Any], fake_gcs: FakeGCS) -> None:
    from tests.servers._process import free_port

    missing = GCSDriver(GCSOptions(**{**options, "bucket_name": "no-such-bucket-here"}))
    with pytest.raises(ServiceError, match="no-such-bucket-here") as caught:
        missing.put("a.txt", io.BytesIO(b"x"))
    assert not isinstance(caught.value, FileNotFoundError)
    assert caught.value.__cause__ is not None
    with pytest.raises(NotFound):
        missing.head("a.txt")
    down = GCSDriver(
        GCSOptions(
            **{**options, "api_endpoint": f"http://127.0.0.1:{free_port()}", "retry_timeout": 0}
        )
    )
    for call in (
        lambda: down.head("a.txt"),
        lambda: down.put("a.txt", io.BytesIO(b"x")),
        lambda: list(down.list("")),
        lambda: down.delete("a.txt"),
    ):
        with pytest.raises(ServiceUnavailable) as refused:
            call()
        assert isinstance(refused.value, ConnectionError)


def test_stream_errors_propagate_unchanged(options: dict[str, Any]) -> None:
    class Broken(Exception):
        pass

    class Failing:
        def __init__(self, good: int) -> None:
            self.good = good

        def read(self, size: int = -1, /) -> bytes:
            if self.good <= 0:
                raise Broken("source failed")
            count = min(size, self.good)
            self.good -= count
            return b"x" * count

    driver = GCSDriver(GCSOptions(**options))
    for good in (10, 9 * _MiB):
        with pytest.raises(Broken):
            driver.put("f.bin", Failing(good))
        assert not driver.exists("f.bin")


def test_upload_source_serves_read_ahead_bytes_again() -> None:
    source = UploadSource(io.BytesIO(b"abcdefghij"))
    head = source.read(4)
    assert head == b"abcd"
    source.unread(head)
    assert source.tell() == 0
    assert source.read(6) == b"abcdef"
    assert source.tell() == 6
    assert source.seek(6) == 6
    with pytest.raises(io.UnsupportedOperation):
        source.seek(0)
    assert source.read(100) == b"ghij"
    assert source.read(100) == b""


def test_declaring_a_storage_loads_no_client_library() -> None:
    """Models and settings declare storages at import: that must stay cheap."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, django; django.setup(); from stowage import GCSStorage; "
        "GCSStorage(bucket_name='b', project_id='p'); "
        "loaded = [m for m in sys.modules if m.startswith(('google', 'requests'))]; "
        "assert not loaded, loaded"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_get_object_parameters_sets_headers_per_file(
    options: dict[str, Any], official: Any
) -> None:
    """django-storages' hook: a subclass gives each file its own upload parameters."""

    class PerFile(GCSStorage):
        def get_object_parameters(self, name: str) -> dict[str, Any]:
            params = super().get_object_parameters(name)
            params["content_disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'
            return params

    storage = PerFile(object_parameters={"cache_control": "max-age=60"}, **options)
    storage.save("docs/report.pdf", ContentFile(b"%PDF"))
    blob = official.get_blob("docs/report.pdf")
    assert blob.content_disposition == 'attachment; filename="report.pdf"'
    assert blob.cache_control == "max-age=60"


# -- signing with an HMAC key -------------------------------------------------------------
#
# GCS documents HMAC-key signing as AWS SigV4 under other names, and no local
# emulator checks signatures (fake-gcs-server serves a signed URL whatever its
# query says). Two oracles then: the official client makes the same URL but
# for the algorithm and signature (it signs with RSA keys only), and botocore's
# SigV4 query signer, taught GCS's names, must compute the same signature.

_HMAC_ACCESS = "GOOG1ESTOWAGETESTSEXAMPLEACCESSID0123456789"
_HMAC_SECRET = "bXkgaG1hYyBzZWNyZXQrd2l0aC9zbGFzaGVzPT0rKys="
_HMAC_NOW = dt.datetime(2026, 11, 30, 23, 59, 58, tzinfo=dt.UTC)
#: Names whose every character must be quoted as Google's client quotes it.
_HMAC_NAMES = [
    "plain.txt",
    "dir/a file+1.txt",
    "café/résumé é.txt",
    "日本/日本語のファイル.txt",
    "punct/!'()*&$@=;:+,.txt",
    "tilde/~user/a~b.txt",
]


@pytest.fixture
def hmac_options(options: dict[str, Any]) -> dict[str, Any]:
    """Return OPTIONS signing with an HMAC key (the RSA key stays, and loses to it)."""
    return {**options, "hmac_access_id": _HMAC_ACCESS, "hmac_secret": _HMAC_SECRET}


@pytest.fixture
def frozen_signers() -> Iterator[None]:
    """Stop stowage's, the official client's and botocore's clocks at one instant."""
    import time
    import types
    from unittest import mock

    from google.cloud.storage import _signing  # type: ignore[import-untyped]

    from stowage.drivers import _sigv4

    naive = _HMAC_NOW.replace(tzinfo=None)
    clock = types.SimpleNamespace(**{**vars(time), "time": _HMAC_NOW.timestamp})
    stamps = (naive.strftime("%Y%m%dT%H%M%SZ"), naive.strftime("%Y%m%d"))
    with (
        mock.patch.object(_sigv4, "time", clock),
        mock.patch.object(_signing, "get_v4_now_dtstamps", return_value=stamps),
        mock.patch("botocore.auth.get_current_datetime", return_value=naive),
    ):
        yield


def _official_url(
    service_account_info: dict[str, str],
    bucket: str,
    key: str,
    *,
    endpoint: str,
    domain: str | None = None,
    method: str = "GET",
    expires: int = 3600,
    disposition: str | None = None,
    query: dict[str, str] | None = None,
    email: str = _HMAC_ACCESS,
) -> str:
    """Return the official client's V4 URL, signed by the service-account key as ``email``.

    By default the key poses as the HMAC access ID.
    """
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        {**service_account_info, "client_email": email}
    )
    client = gcs.Client(project="stowage-tests", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    arguments: dict[str, Any] = {
        "version": "v4",
        "credentials": credentials,
        "method": method,
        "expiration": dt.timedelta(seconds=expires),
        "response_disposition": disposition,
        "query_parameters": query,
    }
    if domain is None:
        arguments["api_access_endpoint"] = endpoint
    else:
        arguments["bucket_bound_hostname"] = domain
    url: str = client.bucket(bucket).blob(key).generate_signed_url(**arguments)
    return url


def _goog4_oracle(url: str, method: str = "GET") -> str:
    """Return the signature botocore's SigV4 query signer gives ``url`` under GCS's names.

    botocore canonicalises the request (path, sorted query, host) and chains
    the HMACs; only the names differ from AWS: the algorithm, the ``GOOG4``
    key prefix, ``goog4_request`` and ``X-Goog-*``.
    """
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    class Goog4QueryAuth(S3SigV4QueryAuth):  # type: ignore[misc]
        def scope(self, request: Any) -> str:
            return str(super().scope(request)).replace("/aws4_request", "/goog4_request")

        def credential_scope(self, request: Any) -> str:
            scope = str(super().credential_scope(request))
            return scope.replace("/aws4_request", "/goog4_request")

        def _modify_request_before_signing(self, request: Any) -> None:
            super()._modify_request_before_signing(request)
            parts = urlsplit(request.url)
            query = parts.query.replace("X-Amz-", "X-Goog-").replace(
                "AWS4-HMAC-SHA256", "GOOG4-HMAC-SHA256"
            )
            request.url = parts._replace(query=query).geturl()

        def _inject_signature_to_request(self, request: Any, signature: str) -> None:
            request.url += f"&X-Goog-Signature={signature}"

        def string_to_sign(self, request: Any, canonical_request: str) -> str:
            text = str(super().string_to_sign(request, canonical_request))
            return text.replace("AWS4-HMAC-SHA256", "GOOG4-HMAC-SHA256", 1)

        def signature(self, string_to_sign: str, request: Any) -> str:
            key = self._sign(
                f"GOOG4{self.credentials.secret_key}".encode(),
                request.context["timestamp"][:8],
            )
            for part in (self._region_name, self._service_name, "goog4_request"):
                key = self._sign(key, part)
            return str(self._sign(key, string_to_sign, hex=True))

    parts = urlsplit(url)
    signing = {"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-SignedHeaders"}
    pairs = [(k, v) for k, v in parse_qsl(parts.query) if k not in signing]
    params = {k: v for k, v in pairs if k not in ("X-Goog-Expires", "X-Goog-Signature")}
    expires = int(dict(pairs)["X-Goog-Expires"])
    request = AWSRequest(
        method=method, url=f"{parts.scheme}://{parts.netloc}{parts.path}", params=params
    )
    signer = Goog4QueryAuth(
        BotoCredentials(_HMAC_ACCESS, _HMAC_SECRET), "storage", "auto", expires=expires
    )
    signer.add_auth(request)
    signed = dict(parse_qsl(urlsplit(request.url).query))
    assert signed["X-Goog-Credential"] == dict(parse_qsl(parts.query))["X-Goog-Credential"]
    return signed["X-Goog-Signature"]


def _check_hmac_url(url: str, official: str, method: str = "GET") -> dict[str, str]:
    """Assert ``url`` is ``official`` but for algorithm and signature, and botocore agrees."""
    unsigned, _, signature = url.rpartition("&X-Goog-Signature=")
    official_unsigned = official.rpartition("&X-Goog-Signature=")[0]
    assert unsigned.replace("=GOOG4-HMAC-SHA256&", "=GOOG4-RSA-SHA256&") == official_unsigned
    assert signature == _goog4_oracle(url, method)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Goog-Algorithm"] == "GOOG4-HMAC-SHA256"
    assert query["X-Goog-Credential"] == f"{_HMAC_ACCESS}/20261130/auto/storage/goog4_request"
    assert query["X-Goog-Date"] == "20261130T235958Z"
    assert query["X-Goog-SignedHeaders"] == "host"
    return query


@pytest.mark.usefixtures("frozen_signers")
@pytest.mark.parametrize("name", _HMAC_NAMES)
def test_rsa_signed_url_is_the_client_librarys(
    options: dict[str, Any],
    service_account_info: dict[str, str],
    fake_gcs: FakeGCS,
    gcs_bucket: str,
    name: str,
) -> None:
    """stowage signs with a service account's key itself, to the byte of the library's URL."""
    from unittest import mock

    from google.cloud.storage import blob as blob_module  # type: ignore[import-untyped]

    storage = GCSStorage(location="media", **options)
    with mock.patch.object(
        blob_module.Blob, "generate_signed_url", side_effect=AssertionError("the library signed")
    ):
        plain = storage.url(name)
        disposition = 'attachment; filename="r 1.csv"'
        overridden = storage.url(
            name, expire=120, parameters={"ResponseContentDisposition": disposition}
        )
        put = storage.url(name, method="put", expire=60, parameters={"generation": "17"})
        on_domain = GCSStorage(location="media", custom_domain="cdn.example.com", **options).url(
            name
        )
    official = functools.partial(
        _official_url, service_account_info, gcs_bucket, f"media/{name}", email=_EMAIL
    )
    assert plain == official(endpoint=fake_gcs.url)
    assert overridden == official(endpoint=fake_gcs.url, expires=120, disposition=disposition)
    assert put == official(
        endpoint=fake_gcs.url, method="PUT", expires=60, query={"generation": "17"}
    )
    assert on_domain == official(endpoint=fake_gcs.url, domain="https://cdn.example.com")


@pytest.mark.usefixtures("frozen_signers")
@pytest.mark.parametrize("name", _HMAC_NAMES)
def test_hmac_signed_url_matches_both_oracles(
    hmac_options: dict[str, Any],
    service_account_info: dict[str, str],
    fake_gcs: FakeGCS,
    gcs_bucket: str,
    name: str,
) -> None:
    storage = GCSStorage(location="media", **hmac_options)
    url = storage.url(name)
    official = _official_url(
        service_account_info, gcs_bucket, f"media/{name}", endpoint=fake_gcs.url
    )
    query = _check_hmac_url(url, official)
    assert query["X-Goog-Expires"] == "3600"


@pytest.mark.usefixtures("frozen_signers")
def test_hmac_signed_url_overrides_put_and_expiry(
    hmac_options: dict[str, Any],
    service_account_info: dict[str, str],
    fake_gcs: FakeGCS,
    gcs_bucket: str,
) -> None:
    storage = GCSStorage(**hmac_options)
    disposition = 'attachment; filename="r 1.csv"'
    for given in ("ResponseContentDisposition", "response-content-disposition"):
        url = storage.url(
            "report.csv", expire=dt.timedelta(minutes=2), parameters={given: disposition}
        )
        official = _official_url(
            service_account_info,
            gcs_bucket,
            "report.csv",
            endpoint=fake_gcs.url,
            expires=120,
            disposition=disposition,
        )
        query = _check_hmac_url(url, official)
        assert query["response-content-disposition"] == disposition
    raw = storage.url("report.csv", parameters={"generation": "17", "userProject": "p 1"})
    official = _official_url(
        service_account_info,
        gcs_bucket,
        "report.csv",
        endpoint=fake_gcs.url,
        query={"generation": "17", "userProject": "p 1"},
    )
    _check_hmac_url(raw, official)
    put_url = storage.url("upload.bin", method="put", expire=60)
    official = _official_url(
        service_account_info, gcs_bucket, "upload.bin", endpoint=fake_gcs.url, method="PUT"
    )
    _check_hmac_url(put_url, official.replace("X-Goog-Expires=3600", "X-Goog-Expires=60"), "PUT")
    with pytest.raises(ValueError, match="7 days"):
        storage.url("report.csv", expire=dt.timedelta(days=8))


@pytest.mark.usefixtures("frozen_signers")
def test_hmac_signed_url_on_a_custom_domain(
    hmac_options: dict[str, Any], service_account_info: dict[str, str], gcs_bucket: str
) -> None:
    storage = GCSStorage(custom_domain="cdn.example.com", **hmac_options)
    url = storage.url("img/a b.png")
    assert url.startswith("https://cdn.example.com/img/a%20b.png?X-Goog-Algorithm=")
    official = _official_url(
        service_account_info,
        gcs_bucket,
        "img/a b.png",
        endpoint="unused",
        domain="https://cdn.example.com",
    )
    _check_hmac_url(url, official)
    located = GCSStorage(location="media", custom_domain="http://cdn.example.com", **hmac_options)
    url = located.url("a.png", method="PUT")
    assert url.startswith("http://cdn.example.com/media/a.png?")
    assert dict(parse_qsl(urlsplit(url).query))["X-Goog-Signature"] == _goog4_oracle(url, "PUT")


def test_hmac_signed_url_fetches_the_body(
    hmac_options: dict[str, Any], fake_gcs: FakeGCS, gcs_bucket: str
) -> None:
    """fake-gcs-server checks no signature: this proves the URL's host and path only."""
    storage = GCSStorage(location="media", **hmac_options)
    name = storage.save("dir/a file+1.txt", ContentFile(b"hmac body"))
    url = storage.url(name)
    assert url.startswith(f"{fake_gcs.url}/{gcs_bucket}/media/dir/a%20file%2B1.txt?")
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"hmac body"


def test_hmac_signing_needs_no_client_and_beats_the_rsa_key(
    hmac_options: dict[str, Any],
) -> None:
    storage = GCSStorage(**hmac_options)
    url = storage.url("a.txt")
    assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256&" in url
    assert storage.driver._connection._json is None  # type: ignore[attr-defined]
    # Anonymous, with no RSA key at all: the HMAC key alone signs.
    keyless = {k: v for k, v in hmac_options.items() if k != "credentials"}
    assert "X-Goog-Signature=" in GCSStorage(**keyless).url("a.txt")


def test_hmac_key_from_settings_and_secret_kept_out(fake_gcs: FakeGCS, gcs_bucket: str) -> None:
    import pickle

    from stowage import secrecy as storage_module

    with override_settings(GS_HMAC_ACCESS_ID=_HMAC_ACCESS, GS_HMAC_SECRET=_HMAC_SECRET):
        storage = GCSStorage(bucket_name=gcs_bucket, api_endpoint=fake_gcs.url, anonymous=True)
        assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256&" in storage.url("a.txt")
        blob = pickle.dumps(storage)
        storage_module._PICKLED_SECRETS.clear()
        elsewhere = pickle.loads(blob)  # as in another process: the secret from settings
        assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256&" in elsewhere.url("a.txt")
    assert _HMAC_SECRET.encode() not in blob
    given = GCSStorage(
        bucket_name=gcs_bucket,
        api_endpoint=fake_gcs.url,
        anonymous=True,
        hmac_access_id=_HMAC_ACCESS,
        hmac_secret=_HMAC_SECRET,
    )
    shown = repr(given) + repr(given.deconstruct()) + repr(given.driver_options)  # type: ignore[attr-defined]
    assert _HMAC_SECRET not in shown
    assert "hmac_secret" not in repr(given.deconstruct())  # type: ignore[attr-defined]
    blob = pickle.dumps(given)
    assert _HMAC_SECRET.encode() not in blob
    storage_module._PICKLED_SECRETS.clear()
    orphan = pickle.loads(blob)
    with pytest.raises(ImproperlyConfigured, match="GS_HMAC_SECRET") as caught:
        orphan.url("a.txt")
    assert _HMAC_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"hmac_access_id": _HMAC_ACCESS}, "'hmac_secret'"),
        ({"hmac_secret": _HMAC_SECRET}, "'hmac_access_id'"),
        ({"hmac_access_id": "", "hmac_secret": _HMAC_SECRET}, "'hmac_access_id' must not be empty"),
        ({"hmac_access_id": _HMAC_ACCESS, "hmac_secret": ""}, "'hmac_secret' must not be empty"),
        (
            {"hmac_access_id": _HMAC_ACCESS, "hmac_secret": _HMAC_SECRET, "iam_sign_blob": True},
            "iam_sign_blob",
        ),
        ({"hmac_access_id": 12, "hmac_secret": _HMAC_SECRET}, "'hmac_access_id' must be"),
    ],
)
def test_bad_hmac_options_name_the_option(
    options: dict[str, Any], changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=named) as caught:
        GCSStorage(**{**options, **changes})
    assert _HMAC_SECRET not in str(caught.value)


def test_own_reads_carry_the_credentials_headers(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing on stowage's own connections is authorized with the credentials' headers."""
    from google.oauth2.credentials import Credentials

    token = Credentials(token="listing-token", quota_project_id="billed-project")  # type: ignore[no-untyped-call]
    driver = GCSDriver(GCSOptions(**{**options, "credentials": token, "anonymous": False}))
    driver.put("d/f.txt", io.BytesIO(b"x"))
    api = driver._connection.json
    assert api is not None
    sent: list[dict[str, str]] = []
    send = api.pool.send

    def recorded(method: str, target: str, headers: dict[str, str], *args: Any) -> Any:
        sent.append(dict(headers))
        return send(method, target, headers, *args)

    monkeypatch.setattr(api.pool, "send", recorded)
    assert driver.exists("d/f.txt")
    assert [entry.key for entry in driver.list("d")] == ["d/f.txt"]
    assert len(sent) == 2
    for headers in sent:
        assert headers["authorization"] == "Bearer listing-token"
        assert headers["x-goog-user-project"] == "billed-project"


# -- chunked uploads of a stream of unknown length ----------------------------------------


def test_a_stream_a_whole_number_of_chunks_long_ends_with_an_empty_request(
    options: dict[str, Any], official: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = GCSDriver(GCSOptions(**options, blob_chunk_size=1 * _MiB))
    data = bytes(range(256)) * (10 * 4096)  # 10 MiB: ten chunks, then nothing
    driver.put("warm-up", io.BytesIO(b"x"))
    requests = _record_requests(driver, monkeypatch)
    info = driver.put("exact.bin", _OneRead(data), content_type="application/x-test")
    assert len(requests) == 12, requests  # the session's start, ten chunks, the total
    assert info.size == len(data)
    blob = official.get_blob("exact.bin")
    assert (blob.size, blob.content_type) == (len(data), "application/x-test")
    assert hashlib.sha256(blob.download_as_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_session_holding_part_of_a_chunk_is_sent_the_rest(
    options: dict[str, Any], official: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk the session took only in part is completed from the bytes still in hand."""
    driver = GCSDriver(GCSOptions(**options, blob_chunk_size=1 * _MiB))
    data = bytes(range(256)) * (9 * 4096 + 5)
    api = driver._connection.json
    resume = api.resume
    spans: list[str] = []

    def partly(session: str, body: Any, content_range: str) -> Any:
        spans.append(content_range)
        if len(spans) == 2:  # the second chunk: send its first 256 KiB only
            start = int(content_range.split(" ")[1].split("-")[0])
            content_range = f"bytes {start}-{start + 256 * 1024 - 1}/*"
            body = body[: 256 * 1024]
        return resume(session, body, content_range)

    monkeypatch.setattr(api, "resume", partly)
    driver.put("partly.bin", _OneRead(data))
    assert spans[1:3] == [
        f"bytes {_MiB}-{2 * _MiB - 1}/*",
        f"bytes {_MiB + 256 * 1024}-{2 * _MiB - 1}/*",
    ]
    blob = official.get_blob("partly.bin")
    assert hashlib.sha256(blob.download_as_bytes()).digest() == hashlib.sha256(data).digest()


class _OneRead(io.RawIOBase):
    """A stream of unknown length that can only be read forward, in small pieces."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), len(self._data), 100_000)
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


# -- credentials: google-auth alone, tokens refreshed on stowage's connections ------------


class _TokenServer:
    """A local OAuth token endpoint answering every grant with a numbered token."""

    def __init__(self) -> None:
        import http.server
        import threading

        grants: list[bytes] = []
        self.grants = grants
        #: Answer every grant with a refusal instead.
        self.refuse = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                grants.append(self.rfile.read(int(self.headers["Content-Length"])))
                answer = {"access_token": f"token-{len(grants)}", "expires_in": 3600}
                if server.refuse:
                    answer = {"error": "invalid_grant", "error_description": "Invalid JWT"}
                body = json.dumps(answer).encode()
                self.send_response(400 if server.refuse else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_server() -> Iterator[_TokenServer]:
    server = _TokenServer()
    yield server
    server.close()


def test_a_service_account_token_is_refreshed_on_stowages_connections(
    options: dict[str, Any],
    service_account_info: dict[str, str],
    token_server: _TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = {**service_account_info, "token_uri": token_server.url}
    driver = GCSDriver(GCSOptions(**{**options, "anonymous": False, "credentials": info}))
    requests = _record_requests(driver, monkeypatch)
    sent: list[dict[str, str]] = []
    send = driver._connection.json.pool.send

    def recorded(method: str, target: str, headers: dict[str, str], *args: Any) -> Any:
        sent.append(dict(headers))
        return send(method, target, headers, *args)

    monkeypatch.setattr(driver._connection.json.pool, "send", recorded)
    driver.put("authorized.txt", io.BytesIO(b"x"))
    assert _read(driver, "authorized.txt") == b"x"
    assert len(token_server.grants) == 1  # one token, kept for every request
    assert (
        b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        in (token_server.grants[0])
    )
    assert len(requests) == len(sent) >= 2
    assert {headers["authorization"] for headers in sent} == {"Bearer token-1"}


def test_a_token_endpoint_that_cannot_be_reached_is_a_clear_error(
    options: dict[str, Any], service_account_info: dict[str, str]
) -> None:
    import google.auth.exceptions

    token_uri = f"http://127.0.0.1:{free_port()}/token"
    info = {**service_account_info, "token_uri": token_uri}
    driver = GCSDriver(
        GCSOptions(**{**options, "anonymous": False, "credentials": info, "retry_timeout": 1})
    )
    with pytest.raises(ServiceUnavailable) as caught:
        driver.head("any.txt")
    assert f"could not reach {token_uri}: " in str(caught.value)
    assert isinstance(caught.value.__cause__, google.auth.exceptions.TransportError)


def test_a_refused_token_is_access_denied(
    options: dict[str, Any], service_account_info: dict[str, str], token_server: _TokenServer
) -> None:
    """The token endpoint's refusal (400 invalid_grant) says the credentials are at fault."""
    token_server.refuse = True
    info = {**service_account_info, "token_uri": token_server.url}
    driver = GCSDriver(GCSOptions(**{**options, "anonymous": False, "credentials": info}))
    with pytest.raises(AccessDenied, match="could not be refreshed") as caught:
        driver.head("any.txt")
    assert "invalid_grant" in str(caught.value)


def test_the_first_requests_load_google_auth_alone(
    fake_gcs: FakeGCS,
    gcs_bucket: str,
    service_account_info: dict[str, str],
    token_server: _TokenServer,
    tmp_path: Any,
) -> None:
    """Saving, reading and listing load neither google-cloud-storage nor ``requests``."""
    import subprocess
    import sys

    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({**service_account_info, "token_uri": token_server.url}))
    script = f"""
import datetime, io, sys
from stowage.drivers.gcs import GCSDriver, GCSOptions
driver = GCSDriver(GCSOptions(bucket_name={gcs_bucket!r}, api_endpoint={fake_gcs.url!r},
                              credentials={str(key_file)!r}))
driver.put("first.txt", io.BytesIO(b"first"), if_absent=True)
assert b"".join(driver.get("first.txt")) == b"first"
assert [name for name, _ in driver.list_names("")] == ["first.txt"]
assert "X-Goog-Signature=" in driver.sign("first.txt", expires=datetime.timedelta(seconds=60))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("requests", "urllib3")
             or m.startswith(("google.cloud", "google.api_core", "google.resumable_media"))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(token_server.grants) == 1


@pytest.mark.usefixtures("frozen_signers")
def test_iam_sign_blob_signs_the_client_librarys_url(
    options: dict[str, Any],
    service_account_info: dict[str, str],
    signing_key: rsa.RSAPrivateKey,
    token_server: _TokenServer,
    fake_gcs: FakeGCS,
    gcs_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """signBlob signs the string the key would: the URL is the library's, to the byte."""
    import base64

    from stowage.drivers.gcs import credentials

    answered: list[str] = []
    forward = credentials.TokenTransport.__call__

    def iam(self: Any, url: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        if not url.startswith("https://iamcredentials.googleapis.com/"):
            return forward(self, url, method, body, **kwargs)
        answered.append(url)  # answered here: tests address nothing but loopback
        payload = base64.b64decode(json.loads(body)["payload"])
        signature = signing_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        signed = json.dumps({"keyId": "k", "signedBlob": base64.b64encode(signature).decode()})
        return credentials._Answer(200, {}, signed.encode())

    monkeypatch.setattr(credentials.TokenTransport, "__call__", iam)
    info = {**service_account_info, "token_uri": token_server.url}
    storage = GCSStorage(
        location="media", **{**options, "credentials": info, "iam_sign_blob": True}
    )
    url = storage.url("a file.txt")
    assert answered == [
        f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{_EMAIL}:signBlob"
    ]
    assert url == _official_url(
        service_account_info, gcs_bucket, "media/a file.txt", endpoint=fake_gcs.url, email=_EMAIL
    )
