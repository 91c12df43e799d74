"""The S3 driver on moto's server: the kit, interop with boto3, URLs, options."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import io
import json
import urllib.error
import urllib.request
from typing import Any
from unittest import mock

import obstore
import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.test import override_settings

from stowage import S3Storage
from stowage.drivers import _sigv4
from stowage.drivers._obstore import ObstoreDriver
from stowage.drivers.base import UPLOADS_PREFIX, ObjectInfo
from stowage.drivers.s3 import S3Driver, S3Options
from stowage.exceptions import AccessDenied, NotFound, ServiceUnavailable, UnsupportedOperation
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)
from stowage.testing.url_contract import Fetch, http_fetch
from tests.servers._process import free_port
from tests.servers.moto import ACCESS_KEY, SECRET_KEY, MotoServer


@pytest.fixture
def options(s3_server: MotoServer, s3_bucket: str) -> dict[str, Any]:
    return s3_server.options(s3_bucket)


class TestS3Driver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> S3Driver:
        return S3Driver(S3Options(**options, multipart_threshold=5 * 1024 * 1024))


class TestS3Storage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    secret_values = (SECRET_KEY,)
    hostile_examples = 60
    # moto checks neither a presigned URL's expiry nor applies response-* overrides.
    server_checks_expiry = False
    server_applies_response_overrides = False

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> S3Storage:
        return S3Storage(location="media", **options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch

    @pytest.fixture
    def broken_storage(self, options: dict[str, Any]) -> S3Storage:
        closed = f"http://127.0.0.1:{free_port()}"
        return S3Storage(
            location="media",
            **{**options, "endpoint_url": closed},
            max_retries=0,
            connect_timeout=1.0,
        )


class TestS3PublicStorage(StorageContract):
    """Unsigned URLs: the other branch of url(), served by a bucket policy."""

    server_checks_expiry = False
    server_applies_response_overrides = False

    @pytest.fixture
    def storage(self, options: dict[str, Any], s3_server: MotoServer) -> S3Storage:
        s3_server.let_anyone_read(options["bucket_name"])
        return S3Storage(querystring_auth=False, **options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch


class TestS3GzipStorage(StorageContract, AsyncStorageContract):
    """Every body compressed: the whole contract over gzip-stored objects."""

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> S3Storage:
        every_type = ("text/plain", "application/octet-stream", "image/png", "image/jpeg")
        return S3Storage(gzip=True, gzip_content_types=every_type, **options)


def _fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes, Any]:
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read(), response.headers


def test_stowage_writes_boto3_reads(options: dict[str, Any], s3_server: MotoServer) -> None:
    storage = S3Storage(
        location="site",
        object_parameters={"CacheControl": "max-age=60", "Metadata": {"owner": "docs"}},
        **options,
    )
    name = storage.save("report.pdf", ContentFile(b"%PDF"))
    head = s3_server.boto3().head_object(Bucket=options["bucket_name"], Key=f"site/{name}")
    assert head["ContentType"] == "application/pdf"
    assert head["CacheControl"] == "max-age=60"
    assert head["Metadata"] == {"owner": "docs"}
    body = s3_server.boto3().get_object(Bucket=options["bucket_name"], Key=f"site/{name}")["Body"]
    assert body.read() == b"%PDF"


def test_boto3_writes_stowage_reads(options: dict[str, Any], s3_server: MotoServer) -> None:
    s3_server.boto3().put_object(
        Bucket=options["bucket_name"],
        Key="in/data.json",
        Body=b"{}",
        ContentType="application/json",
    )
    storage = S3Storage(**options)
    assert storage.open("in/data.json").read() == b"{}"
    assert storage.listdir("in") == ([], ["data.json"])
    assert storage.driver.head("in/data.json").content_type == "application/json"


def test_signed_url_fetches_the_body(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    storage.save("signed.txt", ContentFile(b"signed body"))
    url = storage.url("signed.txt", expire=60)
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=60" in url
    assert _fetch(url)[1] == b"signed body"


def test_response_header_overrides(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    storage.save("d.txt", ContentFile(b"download me"))
    url = storage.url(
        "d.txt", parameters={"ResponseContentDisposition": 'attachment; filename="x.txt"'}
    )
    assert "response-content-disposition=attachment%3B%20filename%3D%22x.txt%22" in url
    # moto ignores the override, so the body is what this server can show.
    assert _fetch(url)[1] == b"download me"


def test_presigned_put_uploads(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    url = storage.url("uploads/direct.bin", method="PUT", expire=300)
    _fetch(url, method="PUT", data=b"from the browser")
    assert storage.open("uploads/direct.bin").read() == b"from the browser"


def test_signer_matches_botocore(s3_server: MotoServer) -> None:
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)
    signer = _sigv4.Presigner(region="eu-west-1", access_key="AKIDEXAMPLE", secret_key="secret")
    ours = signer.url(
        method="GET",
        scheme="https",
        host="s3.eu-west-1.amazonaws.com",
        path="/bucket/dir/a b+c.txt",
        expires=900,
        now=now,
    )
    request = AWSRequest(
        method="GET", url="https://s3.eu-west-1.amazonaws.com/bucket/dir/a%20b%2Bc.txt"
    )
    auth = S3SigV4QueryAuth(Credentials("AKIDEXAMPLE", "secret"), "s3", "eu-west-1", expires=900)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        auth.add_auth(request)
    theirs = request.url
    ours_signature = ours.rsplit("X-Amz-Signature=", 1)[1]
    assert theirs.rsplit("X-Amz-Signature=", 1)[1] == ours_signature


def test_unsigned_and_custom_domain_urls(options: dict[str, Any], s3_server: MotoServer) -> None:
    public = S3Storage(querystring_auth=False, **options)
    s3_server.boto3().put_bucket_policy(
        Bucket=options["bucket_name"],
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{options['bucket_name']}/*",
                    }
                ],
            }
        ),
    )
    public.save("p/a b.txt", ContentFile(b"public"))
    url = public.url("p/a b.txt")
    assert url == f"{options['endpoint_url']}/{options['bucket_name']}/p/a%20b.txt"
    assert _fetch(url)[1] == b"public"
    cdn = S3Storage(custom_domain="cdn.example.com", location="m", **options)
    assert cdn.url("x.css") == "https://cdn.example.com/m/x.css"


def test_large_atomic_create_keeps_headers_and_refuses_a_taken_name(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    storage = S3Storage(
        multipart_threshold=5 * 1024 * 1024,
        object_parameters={"CacheControl": "max-age=9"},
        **options,
    )
    data = b"z" * (6 * 1024 * 1024)
    first = storage.save("big/file.bin", ContentFile(data))
    second = storage.save("big/file.bin", ContentFile(data))
    assert first == "big/file.bin"
    assert second != first
    head = s3_server.boto3().head_object(Bucket=options["bucket_name"], Key=first)
    assert head["CacheControl"] == "max-age=9"
    assert head["ContentLength"] == len(data)
    assert storage.listdir("") == (["big"], [])


def test_parts_grow_to_stay_within_the_part_limit(options: dict[str, Any]) -> None:
    driver = S3Driver(S3Options(**options))
    mib, gib = 1024 * 1024, 1024 * 1024 * 1024
    assert driver.part_size(None) == 8 * mib
    assert driver.part_size(gib) == 8 * mib
    assert driver.part_size(100 * gib) == 11 * mib  # 10.24 MiB needed
    assert driver.part_size(5 * 1024 * gib) == 525 * mib  # S3's largest object


def test_a_body_over_the_part_limit_goes_up_in_larger_parts(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    mib = 1024 * 1024
    storage = S3Storage(
        multipart_threshold=5 * mib, multipart_chunksize=5 * mib, file_overwrite=True, **options
    )
    storage.driver.max_parts = 2  # type: ignore[attr-defined]
    data = bytes(range(256)) * (12 * mib // 256)
    storage.save("parts.bin", ContentFile(data))
    client = s3_server.boto3()
    head = client.head_object(Bucket=options["bucket_name"], Key="parts.bin")
    assert head["ETag"].strip('"').endswith("-2")  # two parts of 6 MiB, not three of 5
    body = client.get_object(Bucket=options["bucket_name"], Key="parts.bin")["Body"].read()
    assert body == data


def test_multipart_concurrency_is_passed_on(options: dict[str, Any]) -> None:
    mib = 1024 * 1024
    # Without part checksums a large overwrite is obstore's multipart upload.
    storage = S3Storage(
        multipart_threshold=5 * mib,
        multipart_concurrency=1,
        file_overwrite=True,
        checksum_algorithm=None,
        **options,
    )
    data = b"c" * (11 * mib)
    with mock.patch("obstore.put", wraps=obstore.put) as put:
        storage.save("one-at-a-time.bin", ContentFile(data))
    assert put.call_args.kwargs["max_concurrency"] == 1
    assert storage.open("one-at-a-time.bin").read() == data


def test_failed_multipart_upload_leaves_nothing(options: dict[str, Any]) -> None:
    class Broken(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent > 7 * 1024 * 1024:
                raise OSError("the upload broke mid-stream")
            buffer[: len(buffer)] = b"x" * len(buffer)
            self.sent += len(buffer)
            return len(buffer)

    storage = S3Storage(multipart_threshold=5 * 1024 * 1024, **options)
    with pytest.raises(OSError, match="mid-stream"):
        storage.driver.put("broken.bin", Broken(), size=None)
    assert not storage.exists("broken.bin")


def test_settings_fallbacks(s3_server: MotoServer, s3_bucket: str) -> None:
    with override_settings(
        AWS_STORAGE_BUCKET_NAME=s3_bucket,
        AWS_S3_ENDPOINT_URL=s3_server.endpoint,
        AWS_S3_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_S3_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_QUERYSTRING_AUTH=False,
        AWS_LOCATION="from-settings",
        AWS_S3_CUSTOM_DOMAIN="static.example.com",
    ):
        storage = S3Storage()
        name = storage.save("a.txt", ContentFile(b"a"))
        assert storage.url(name) == "https://static.example.com/from-settings/a.txt"
        assert storage.driver.head("from-settings/a.txt").size == 1


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"default_acl": "public-read"}, "bucket policy"),
        ({"object_parameters": {"ACL": "public-read"}}, "'object_parameters'"),
        ({"addressing_style": "sideways"}, "'addressing_style'"),
        ({"multipart_chunksize": 1024}, "'multipart_chunksize'"),
        ({"multipart_concurrency": 0}, "'multipart_concurrency'"),
        ({"bucket_nmae": "x"}, "'bucket_nmae'"),
    ],
)
def test_bad_options_name_themselves(
    options: dict[str, Any], bad: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        S3Storage(**{**options, **bad})


def test_missing_bucket_is_reported(s3_server: MotoServer) -> None:
    storage = S3Storage(**s3_server.options("no-such-bucket"))
    with pytest.raises(NotFound) as caught:
        storage.open("x").read()
    assert SECRET_KEY not in str(caught.value)


def test_refused_connection_is_clear(options: dict[str, Any]) -> None:
    from tests.servers._process import free_port

    storage = S3Storage(
        **{**options, "endpoint_url": f"http://127.0.0.1:{free_port()}"},
        max_retries=0,
        connect_timeout=1.0,
    )
    with pytest.raises(ServiceUnavailable) as caught:
        storage.exists("x")
    assert SECRET_KEY not in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)


def test_secret_never_in_repr_or_deconstruct(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    shown = repr(storage) + repr(storage.deconstruct()) + repr(storage.driver_options)
    assert SECRET_KEY not in shown
    assert AccessDenied  # the tree has a class for refused credentials


def _post_form(url: str, fields: dict[str, str], data: bytes) -> int:
    boundary = "stowageboundary"
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_presigned_post_uploads_within_its_conditions(options: dict[str, Any]) -> None:
    storage = S3Storage(location="media", **options)
    form = storage.presigned_post("uploads/avatar.png", max_size=1000, content_type="image/png")
    assert form["fields"]["key"] == "media/uploads/avatar.png"
    assert form["url"] == f"{options['endpoint_url']}/{options['bucket_name']}"
    assert set(form["fields"]) >= {"policy", "x-amz-signature", "x-amz-credential"}
    policy = json.loads(__import__("base64").b64decode(form["fields"]["policy"]))
    assert ["content-length-range", 0, 1000] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert _post_form(form["url"], form["fields"], b"\x89PNG small") in (200, 201, 204)
    assert storage.open("uploads/avatar.png").read() == b"\x89PNG small"
    with pytest.raises(SuspiciousFileOperation):
        storage.presigned_post("../escape.png")


def test_custom_domain_signing_for_s3_compatible_cdns(options: dict[str, Any]) -> None:
    plain = S3Storage(custom_domain="cdn.example.com", **options)
    assert plain.url("a.txt") == "https://cdn.example.com/a.txt"
    signing = S3Storage(custom_domain="cdn.example.com", sign_custom_domain=True, **options)
    url = signing.url("dir/a b.txt", expire=120)
    assert url.startswith("https://cdn.example.com/dir/a%20b.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Expires=120" in url
    assert "X-Amz-Signature=" in url


def test_gzip_stores_compressed_and_reads_back_plain(
    options: dict[str, Any], s3_server: MotoServer
) -> None:
    css = b"body { color: red; }\n" * 500
    storage = S3Storage(gzip=True, **options)
    name = storage.save("site.css", ContentFile(css))
    stored = s3_server.boto3().get_object(Bucket=options["bucket_name"], Key=name)
    assert stored["ContentEncoding"] == "gzip"
    assert stored["ContentType"] == "text/css"
    assert gzip.decompress(stored["Body"].read()) == css
    assert storage.size(name) == len(css)
    assert storage.open(name).read() == css
    with storage.open(name) as handle:
        handle.seek(1000)
        assert handle.read(21) == css[1000:1021]
    # Types outside gzip_content_types are stored as given.
    storage.save("photo.png", ContentFile(b"\x89PNG raw"))
    raw = s3_server.boto3().get_object(Bucket=options["bucket_name"], Key="photo.png")
    assert "ContentEncoding" not in raw
    assert raw["Body"].read() == b"\x89PNG raw"


def test_bodies_encoded_by_the_caller_read_back_as_saved(options: dict[str, Any]) -> None:
    packed = gzip.compress(b"already compressed")
    storage = S3Storage(object_parameters={"ContentEncoding": "gzip"}, gzip=True, **options)
    name = storage.save("data.js", ContentFile(packed))
    assert storage.open(name).read() == packed
    assert storage.size(name) == len(packed)


def test_gzip_setting_fallbacks(options: dict[str, Any], s3_server: MotoServer) -> None:
    with override_settings(AWS_IS_GZIPPED=True, GZIP_CONTENT_TYPES=["application/json"]):
        storage = S3Storage(**options)
    storage.save("a.json", ContentFile(b"{}"))
    storage.save("a.css", ContentFile(b"p {}"))
    client = s3_server.boto3()
    assert client.head_object(Bucket=options["bucket_name"], Key="a.json")["ContentEncoding"]
    assert "ContentEncoding" not in client.head_object(Bucket=options["bucket_name"], Key="a.css")


def test_storage_class(options: dict[str, Any], s3_server: MotoServer) -> None:
    storage = S3Storage(object_parameters={"StorageClass": "STANDARD_IA"}, **options)
    name = storage.save("cold.bin", ContentFile(b"rarely read"))
    head = s3_server.boto3().head_object(Bucket=options["bucket_name"], Key=name)
    assert head["StorageClass"] == "STANDARD_IA"
    assert storage.open(name).read() == b"rarely read"


# -- CloudFront ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloudfront_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_cloudfront_signed_urls_match_botocore(
    options: dict[str, Any], cloudfront_pem: str
) -> None:
    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    storage = S3Storage(
        custom_domain="cdn.example.com",
        cloudfront_key_id="K2JCJMDEHXQW5F",
        cloudfront_key=cloudfront_pem,
        **options,
    )
    url = storage.url("photos/a b.jpg", expire=600)
    unsigned, _, query = url.partition("?")
    assert unsigned == "https://cdn.example.com/photos/a%20b.jpg"
    fields = dict(part.split("=", 1) for part in query.split("&"))
    assert fields["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    expires = int(fields["Expires"])
    assert abs(expires - (dt.datetime.now(dt.UTC).timestamp() + 600)) < 5

    key = serialization.load_pem_private_key(cloudfront_pem.encode(), password=None)

    def rsa_signer(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())

    theirs = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_signer).generate_presigned_url(
        unsigned, date_less_than=dt.datetime.fromtimestamp(expires, dt.UTC)
    )
    assert url == theirs


def test_cloudfront_options_are_checked(options: dict[str, Any], cloudfront_pem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="cloudfront_key"):
        S3Storage(cloudfront_key_id="K1", **options)
    with pytest.raises(ImproperlyConfigured, match="cloudfront_key") as caught:
        S3Storage(cloudfront_key_id="K1", cloudfront_key="-----BEGIN nonsense", **options)
    assert "nonsense" not in str(caught.value)
    with pytest.raises(ImproperlyConfigured, match="choose one"):
        S3Storage(
            cloudfront_key_id="K1",
            cloudfront_key=cloudfront_pem,
            sign_custom_domain=True,
            **options,
        )
    storage = S3Storage(
        custom_domain="cdn.example.com",
        cloudfront_key_id="K1",
        cloudfront_key=cloudfront_pem,
        **options,
    )
    assert cloudfront_pem not in repr(storage) + repr(storage.deconstruct())
    with pytest.raises(UnsupportedOperation, match="GET only"):
        storage.url("x.txt", method="PUT")
    # Without a custom domain, URLs are signed by S3 as usual.
    plain = S3Storage(cloudfront_key_id="K1", cloudfront_key=cloudfront_pem, **options)
    assert "X-Amz-Signature=" in plain.url("x.txt")


def test_cloudfront_settings_fallbacks(options: dict[str, Any], cloudfront_pem: str) -> None:
    with override_settings(
        AWS_CLOUDFRONT_KEY_ID="K9",
        AWS_CLOUDFRONT_KEY=cloudfront_pem,
        AWS_S3_CUSTOM_DOMAIN="cdn.test",
    ):
        storage = S3Storage(**options)
    assert "Key-Pair-Id=K9" in storage.url("a.txt")


@pytest.mark.parametrize("by_listing", [True, False])
def test_exists_either_way(options: dict[str, Any], by_listing: bool) -> None:
    """One listing, or HEAD then a listing of key/: the same answers."""
    driver = S3Driver(S3Options(**options, exists_by_listing=by_listing))
    for key in ("d/sub/f.txt", "d/name-2", "d/name.bak", "d/name"):
        driver.put(key, io.BytesIO(b"x"), size=1)
    for key, expected in (("d", True), ("d/sub", True), ("d/name", True), ("d/nam", False)):
        assert driver.exists(key) is expected, key
        assert asyncio.run(driver.aexists(key)) is expected, key


def test_exists_takes_one_request(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    driver = S3Driver(S3Options(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"), size=1)
    sent: list[str] = []
    send = driver.rest.call

    def counted(method: str, key: str, query: Any = None, **kwargs: Any) -> Any:
        sent.append(f"{method} {dict(query or {}).get('prefix')}")
        return send(method, key, query, **kwargs)

    monkeypatch.setattr(driver.rest, "call", counted)
    monkeypatch.setattr(obstore, "head", None)  # a HEAD through obstore would fail
    for key in ("d", "d/f.txt", "d/missing"):
        sent.clear()
        driver.exists(key)
        assert sent == [f"GET {key}"]


def test_exists_heads_once_the_bucket_refuses_listings(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A policy granting reads but not s3:ListBucket: exists() still answers, and says why."""
    from stowage.drivers.s3 import lookup
    from stowage.exceptions import AccessDenied

    driver = S3Driver(S3Options(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"), size=1)
    refusals: list[str] = []

    def refused(rest: Any, key: str) -> bool:
        refusals.append(key)
        raise AccessDenied("AccessDenied: listing refused")

    monkeypatch.setattr(lookup, "listed", refused)
    assert driver.exists("d/f.txt")
    assert asyncio.run(driver.aexists("d/f.txt"))
    assert driver.exists("d")
    assert not driver.exists("d/missing")
    assert refusals == ["d/f.txt"]  # refused once, then HEAD (and a listing of key/)
    assert "exists_by_listing=False" in caplog.text


def test_one_level_lists_as_obstore_does(options: dict[str, Any]) -> None:
    """stowage's page-at-a-time listing against obstore's on the same bucket."""
    driver = S3Driver(S3Options(**options))
    for key in ("d/a b+c.txt", "d/é%20.txt", "d/sub/f.txt", "d/sub2/g.txt", "top.txt"):
        driver.put(key, io.BytesIO(b"xy"), size=2)
    driver.put(f"d/{UPLOADS_PREFIX}/x", io.BytesIO(b"x"), size=1)  # not the staging prefix
    driver.put(f"{UPLOADS_PREFIX}/staged", io.BytesIO(b"x"), size=1)  # the staging prefix
    for directory in ("", "d", "d/sub", "missing"):
        ours = list(driver.list(directory))
        theirs = list(ObstoreDriver.list(driver, directory))
        assert ours == theirs, directory
    names = {entry.key: entry for entry in driver.list("d")}
    assert set(names) == {"d/a b+c.txt", "d/é%20.txt", "d/sub", "d/sub2", f"d/{UPLOADS_PREFIX}"}
    assert UPLOADS_PREFIX not in {entry.key for entry in driver.list("")}
    info = names["d/a b+c.txt"]
    assert isinstance(info, ObjectInfo)
    assert (info.size, info.modified is not None, bool(info.etag)) == (2, True, True)


def test_one_level_leaves_out_a_directory_marker(options: dict[str, Any]) -> None:
    """A console's empty ``d/`` object is the directory itself, not a file named ""."""
    driver = S3Driver(S3Options(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"), size=1)
    driver.rest.call("PUT", "d/", what="a directory marker", body=b"")
    assert [entry.key for entry in driver.list("d")] == ["d/f.txt"]
    assert S3Storage(**options).listdir("d") == ([], ["f.txt"])


def test_declaring_a_storage_does_not_import_stowages_own_client() -> None:
    """Its modules and their XML parser load with the first driver, not with settings or models."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        import django
        from django.conf import settings
        settings.configure()
        django.setup()
        own = ("xml.etree.ElementTree", "stowage.drivers.s3.rest", "stowage.drivers.s3.creates")
        already = [m for m in own if m in sys.modules]
        assert not already, already
        from stowage import S3Storage
        import stowage.drivers.s3
        storage = S3Storage(bucket_name="b", access_key="a", secret_key="s")
        loaded = [m for m in own if m in sys.modules]
        assert not loaded, loaded
        storage.driver
        assert "stowage.drivers.s3.rest" in sys.modules
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
