"""S3 signatures checked against botocore, and every url() kind fetched from a real server.

No local S3 fake verifies SigV4 presigned signatures (moto checks none of
them, s3rver only their expiry), so botocore is the oracle: for the same
request at the same instant its presigned URL must carry the same canonical
query and the same ``X-Amz-Signature`` as ours. Header-signed requests are
checked by moto itself in its authenticating mode (``tests/servers/moto_auth.py``).
Every kind of URL is then fetched from s3rver and moto, which apply them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import secrets
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from email.message import Message
from typing import Any
from unittest import mock
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from stowage import S3Storage
from stowage.drivers import _sigv4
from stowage.exceptions import AccessDenied, UnsupportedOperation
from tests.servers.moto import MotoServer
from tests.servers.moto_auth import AuthMotoServer
from tests.servers.s3rver import S3rver

__all__: list[str] = []

ACCESS = "AKIDSTOWAGEEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"
#: Temporary credentials' tokens carry "/", "+" and "=", which must be quoted.
TOKEN = "FwoGZXIvYXdzEB0aDE/zsJ+token+with/slashes=="
NOW = dt.datetime(2026, 11, 24, 12, 34, 56, tzinfo=dt.UTC)

#: Names whose every character SigV4 must quote exactly as botocore does.
NAMES = [
    "plain.txt",
    "dir/sub/report 2026 final.pdf",
    "café/résumé é.txt",
    "日本/日本語のファイル.txt",
    "punct/!'()*&$@=;:+,.txt",
    "tilde/~user/a~b.txt",
    "mix/a b!é日本~'(1)*&$@=;:+,.txt",
]

#: Response overrides by their boto3 names (stowage also takes the query names).
OVERRIDES = [
    {"ResponseContentDisposition": 'attachment; filename="report 2026.pdf"'},
    {"ResponseContentType": "application/pdf"},
    {"ResponseCacheControl": "no-cache, max-age=0"},
    {"ResponseContentDisposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"},
    {
        "ResponseCacheControl": "private, max-age=60",
        "ResponseContentDisposition": "inline",
        "ResponseContentEncoding": "identity",
        "ResponseContentLanguage": "fr-CA",
        "ResponseContentType": "text/plain; charset=utf-8",
        "ResponseExpires": "Tue, 01 Dec 2026 16:00:00 GMT",
    },
    {"response-content-type": "image/png", "response-cache-control": "no-store"},
]

_BOTO_NAMES = {query: boto for boto, query in _sigv4.RESPONSE_PARAMETERS.items()}


# -- the oracle ---------------------------------------------------------------------


@contextlib.contextmanager
def frozen_clocks(now: dt.datetime = NOW) -> Iterator[None]:
    """Stop botocore's clock and stowage's signer clock at ``now``.

    botocore reads ``get_current_datetime()``; stowage's signer reads
    ``time.time()`` for X-Amz-Date and ``dt.datetime.now()`` for a POST
    policy's expiration, through its own module globals.
    """
    naive = now.replace(tzinfo=None)

    class _FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Any:
            return now.astimezone(tz) if tz is not None else naive

    clock = types.SimpleNamespace(**{**vars(time), "time": now.timestamp})
    calendar = types.SimpleNamespace(**{**vars(dt), "datetime": _FrozenDatetime})
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=naive),
        mock.patch("botocore.signers.get_current_datetime", return_value=naive),
        mock.patch.object(_sigv4, "time", clock),
        mock.patch.object(_sigv4, "dt", calendar),
    ):
        yield


@functools.lru_cache(maxsize=64)
def botocore_client(
    endpoint: str,
    region: str,
    style: str,
    *,
    secret: str = SECRET,
    token: str | None = None,
) -> Any:
    """Return a boto3 S3 client; presigning with it makes no request."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )


def botocore_url(
    client: Any,
    bucket: str,
    key: str,
    *,
    method: str = "GET",
    expires: int = 900,
    parameters: Mapping[str, str] | None = None,
    now: dt.datetime = NOW,
) -> str:
    """Return botocore's presigned URL for the request stowage is asked for, at ``now``."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    for name, value in (parameters or {}).items():
        params[_BOTO_NAMES.get(name, name)] = value
    operation = {"GET": "get_object", "PUT": "put_object"}[method]
    with frozen_clocks(now):
        return str(client.generate_presigned_url(operation, Params=params, ExpiresIn=expires))


def stowage_url(storage: S3Storage, name: str, **kwargs: Any) -> str:
    """Return stowage's signed URL for ``name`` at the frozen instant."""
    with frozen_clocks():
        return storage.url(name, **kwargs)


def _pairs(url: str) -> dict[str, str]:
    """Return the query's parameters as sent (still percent-encoded)."""
    return dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))


def canonical_query(url: str) -> str:
    """Return the canonical query SigV4 signs: every parameter but the signature, sorted."""
    return "&".join(f"{k}={v}" for k, v in sorted(_pairs(url).items()) if k != "X-Amz-Signature")


def signature(url: str) -> str:
    """Return the ``X-Amz-Signature`` of a presigned URL."""
    return _pairs(url)["X-Amz-Signature"]


def _signed_host(url: str) -> str:
    """Return the Host a client sends for ``url`` (no default port, lower case)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def assert_same_request(ours: str, theirs: str) -> None:
    """Assert both URLs address the same object with the same canonical query and signature."""
    o, t = urlsplit(ours), urlsplit(theirs)
    assert (o.scheme, _signed_host(ours), o.path) == (t.scheme, _signed_host(theirs), t.path)
    assert canonical_query(ours) == canonical_query(theirs)
    assert _pairs(ours)["X-Amz-Date"] == NOW.strftime("%Y%m%dT%H%M%SZ")  # the clock is frozen
    assert signature(ours) == signature(theirs)


# -- how a storage is addressed, and botocore's same addressing ------------------------

BUCKET = "media-bucket"

#: (id, stowage options, botocore endpoint, botocore addressing style)
ADDRESSING = [
    (
        "path-endpoint",
        {"endpoint_url": "http://127.0.0.1:9000"},
        "http://127.0.0.1:9000",
        "path",
    ),
    (
        "path-aws",
        {"addressing_style": "path", "region_name": "eu-west-1"},
        "https://s3.eu-west-1.amazonaws.com",
        "path",
    ),
    (
        "virtual-aws",
        {"addressing_style": "virtual", "region_name": "eu-west-1"},
        "https://s3.eu-west-1.amazonaws.com",
        "virtual",
    ),
]


def _region(options: Mapping[str, Any]) -> str:
    return str(options.get("region_name", "us-east-1"))


def make_storage(options: Mapping[str, Any], **extra: Any) -> S3Storage:
    """Return an S3Storage on ``BUCKET`` with the test key (no request is made)."""
    settings: dict[str, Any] = {"bucket_name": BUCKET, "access_key": ACCESS, "secret_key": SECRET}
    return S3Storage(**{**settings, **options, **extra})


@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
@pytest.mark.parametrize("name", NAMES)
def test_get_signature_matches_botocore(
    _id: str, options: dict[str, Any], endpoint: str, style: str, name: str
) -> None:
    ours = stowage_url(make_storage(options), name, expire=900)
    client = botocore_client(endpoint, _region(options), style)
    assert_same_request(ours, botocore_url(client, BUCKET, name, expires=900))


@pytest.mark.parametrize("parameters", OVERRIDES)
@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
def test_response_overrides_match_botocore(
    _id: str, options: dict[str, Any], endpoint: str, style: str, parameters: dict[str, str]
) -> None:
    name = "downloads/report 2026 é.pdf"
    ours = stowage_url(make_storage(options), name, expire=300, parameters=parameters)
    client = botocore_client(endpoint, _region(options), style)
    theirs = botocore_url(client, BUCKET, name, expires=300, parameters=parameters)
    assert_same_request(ours, theirs)
    for query_name in {_sigv4.RESPONSE_PARAMETERS.get(k, k) for k in parameters}:
        assert query_name in _pairs(ours)


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
def test_session_token_is_signed_like_botocore(
    _id: str, options: dict[str, Any], endpoint: str, style: str, method: str
) -> None:
    name = "tmp/a b+c.txt"
    storage = make_storage(options, session_token=TOKEN)
    ours = stowage_url(storage, name, method=method, expire=600)
    client = botocore_client(endpoint, _region(options), style, token=TOKEN)
    assert_same_request(ours, botocore_url(client, BUCKET, name, method=method, expires=600))
    assert unquote(_pairs(ours)["X-Amz-Security-Token"]) == TOKEN


@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
@pytest.mark.parametrize("name", [NAMES[1], NAMES[6]])
def test_presigned_put_matches_botocore(
    _id: str, options: dict[str, Any], endpoint: str, style: str, name: str
) -> None:
    ours = stowage_url(make_storage(options), name, method="PUT", expire=120)
    client = botocore_client(endpoint, _region(options), style)
    assert_same_request(ours, botocore_url(client, BUCKET, name, method="PUT", expires=120))


@pytest.mark.parametrize(
    ("region", "expires"),
    [
        ("us-east-1", 1),
        ("eu-west-1", 60),
        ("eu-central-2", 3600),
        ("ap-northeast-1", 86_400),
        ("sa-east-1", _sigv4.MAX_EXPIRES),
    ],
)
@pytest.mark.parametrize("style", ["path", "virtual"])
def test_regions_and_lifetimes_match_botocore(region: str, expires: int, style: str) -> None:
    storage = make_storage({"region_name": region, "addressing_style": style})
    ours = stowage_url(storage, "x/y z.bin", expire=expires)
    client = botocore_client(f"https://s3.{region}.amazonaws.com", region, style)
    assert_same_request(ours, botocore_url(client, BUCKET, "x/y z.bin", expires=expires))
    assert _pairs(ours)["X-Amz-Expires"] == str(expires)
    assert f"%2F{region}%2Fs3%2F" in _pairs(ours)["X-Amz-Credential"]


def test_one_storage_signs_on_across_seconds_days_and_new_keys() -> None:
    """What a storage keeps between URLs (the second's date, the day's key) is renewed."""
    storage = make_storage({"region_name": "eu-west-1"})
    client = botocore_client("https://s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual")
    for now in (NOW, NOW + dt.timedelta(seconds=1), NOW + dt.timedelta(days=1), NOW):
        with frozen_clocks(now):
            ours = storage.url("a b.txt", expire=60)
        theirs = botocore_url(client, BUCKET, "a b.txt", expires=60, now=now)
        assert canonical_query(ours) == canonical_query(theirs)
        assert signature(ours) == signature(theirs)
        assert _pairs(ours)["X-Amz-Date"] == now.strftime("%Y%m%dT%H%M%SZ")
    # New keys, as the credential chain hands out when a role's keys are renewed.
    storage.driver._static_keys = (ACCESS, WRONG_SECRET, TOKEN)  # type: ignore[attr-defined]
    renewed = botocore_client(
        "https://s3.eu-west-1.amazonaws.com",
        "eu-west-1",
        "virtual",
        secret=WRONG_SECRET,
        token=TOKEN,
    )
    ours = stowage_url(storage, "a b.txt", expire=60)
    assert_same_request(ours, botocore_url(renewed, BUCKET, "a b.txt", expires=60))


def test_one_second_of_mixed_urls_matches_botocore() -> None:
    """What a storage keeps within a second is kept apart by lifetime, overrides and method."""
    storage = make_storage({"region_name": "eu-west-1"})
    client = botocore_client("https://s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual")
    override = {"ResponseContentDisposition": "attachment"}
    calls: list[dict[str, Any]] = [
        {"expires": 60},
        {"expires": 600},
        {"expires": 60, "parameters": override},
        {"expires": 60, "method": "PUT"},
        {"expires": 60},
        {"expires": 600},
    ]
    for number, call in enumerate(calls):
        name = f"a/{number} b.txt"
        ours = stowage_url(
            storage,
            name,
            expire=call["expires"],
            method=call.get("method", "GET"),
            parameters=call.get("parameters"),
        )
        assert_same_request(ours, botocore_url(client, BUCKET, name, **call))


def test_default_lifetime_is_querystring_expire() -> None:
    storage = make_storage({"region_name": "eu-west-1"}, querystring_expire=1234)
    ours = stowage_url(storage, "a.txt")
    client = botocore_client("https://s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual")
    assert_same_request(ours, botocore_url(client, BUCKET, "a.txt", expires=1234))


@pytest.mark.parametrize("location", ["", "media/site"])
@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
@pytest.mark.parametrize("name", [*NAMES, "/lead.txt", "dir\\back.txt", "./dot/x.txt"])
def test_the_usual_url_matches_botocore(
    _id: str, options: dict[str, Any], endpoint: str, style: str, name: str, location: str
) -> None:
    """url(name) alone, which a storage signs on its shortest path, signs what botocore does."""
    storage = make_storage(options, querystring_expire=900, location=location)
    key = storage.key(name.replace("\\", "/").lstrip("/"))
    client = botocore_client(endpoint, _region(options), style)
    assert_same_request(stowage_url(storage, name), botocore_url(client, BUCKET, key, expires=900))
    assert stowage_url(storage, name) == stowage_url(storage, name, expire=900)


def test_the_usual_url_obeys_a_drivers_own_sign() -> None:
    from stowage.drivers.s3 import S3Driver

    class Stamped(S3Driver):
        def sign(self, key: str, **kwargs: Any) -> str:
            return super().sign(key, **kwargs) + "&stamp=1"

    storage = make_storage({"region_name": "eu-west-1"})
    storage._driver = Stamped(storage.driver.options)  # type: ignore[attr-defined]
    assert storage.url("a.txt").endswith("&stamp=1")


def test_the_usual_url_refuses_what_the_others_refuse() -> None:
    storage = make_storage({"region_name": "eu-west-1"}, querystring_expire=8 * 24 * 3600)
    with pytest.raises(UnsupportedOperation, match="7 days"):
        storage.url("a.txt")
    assert "X-Amz-Expires=60&" in storage.url("a.txt", expire=60)
    storage = make_storage({"region_name": "eu-west-1"})
    for unsafe in ("a/../../b.txt", "a/\x00.txt"):
        with pytest.raises(SuspiciousFileOperation):
            storage.url(unsafe)


@pytest.mark.parametrize(
    ("endpoint", "style", "bucket_in_host"),
    [
        # Services reached through a default port, an upper-case host or a path
        # prefix (a reverse proxy): the Host a client sends is what is signed.
        ("https://minio.example.com:443", "path", False),
        ("http://minio.example.com:80", "path", False),
        ("https://MinIO.Example.com", "path", False),
        ("http://127.0.0.1:9000/s3/", "path", False),
        ("http://[::1]:9000", "path", False),
        ("https://accountid.r2.cloudflarestorage.com", "path", False),
        # Virtual-hosted on an endpoint: as obstore wants it, the endpoint names the bucket.
        ("https://media-bucket.s3.eu-west-1.amazonaws.com", "virtual", True),
    ],
)
def test_endpoint_forms_match_botocore(endpoint: str, style: str, bucket_in_host: bool) -> None:
    region = "auto" if "r2." in endpoint else "eu-west-1"
    storage = make_storage(
        {"endpoint_url": endpoint, "region_name": region}, addressing_style=style
    )
    name = "dir/a b~!.txt"
    ours = stowage_url(storage, name, expire=60)
    boto_endpoint = endpoint.replace(f"{BUCKET}.", "") if bucket_in_host else endpoint
    client = botocore_client(boto_endpoint, region, style)
    assert_same_request(ours, botocore_url(client, BUCKET, name, expires=60))


@pytest.mark.parametrize("location", ["", "media/uploads"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_custom_domain_signing_matches_botocore(location: str, method: str) -> None:
    """``sign_custom_domain``: signed for the CDN's host, the bucket implied by it.

    botocore signs the same request as a virtual-hosted one: endpoint
    ``https://example.com`` and bucket ``cdn`` make host ``cdn.example.com``.
    """
    name = "img/photo é 1.jpg"
    key = f"{location}/{name}" if location else name
    storage = make_storage(
        {"region_name": "auto"},
        custom_domain="cdn.example.com",
        sign_custom_domain=True,
        location=location,
    )
    parameters = {"ResponseContentType": "image/jpeg"} if method == "GET" else None
    ours = stowage_url(storage, name, method=method, expire=300, parameters=parameters)
    assert ours.startswith("https://cdn.example.com/")
    client = botocore_client("https://example.com", "auto", "virtual")
    theirs = botocore_url(client, "cdn", key, method=method, expires=300, parameters=parameters)
    assert_same_request(ours, theirs)


def test_custom_domain_with_a_path_matches_botocore() -> None:
    """A custom domain with a path ("host/bucket") signs that path, as path-style does."""
    storage = make_storage(
        {"region_name": "us-east-1"},
        custom_domain="files.example.com:8443/media-bucket",
        sign_custom_domain=True,
    )
    ours = stowage_url(storage, "a/b c.txt", expire=60)
    assert ours.startswith("https://files.example.com:8443/media-bucket/a/b%20c.txt?")
    client = botocore_client("https://files.example.com:8443", "us-east-1", "path")
    assert_same_request(ours, botocore_url(client, BUCKET, "a/b c.txt", expires=60))


def test_a_wrong_secret_gives_a_different_signature() -> None:
    name = NAMES[6]
    client = botocore_client("http://127.0.0.1:9000", "us-east-1", "path")
    theirs = botocore_url(client, BUCKET, name, expires=900)
    right = stowage_url(make_storage(ADDRESSING[0][1]), name, expire=900)
    wrong = stowage_url(make_storage(ADDRESSING[0][1], secret_key=WRONG_SECRET), name, expire=900)
    assert signature(right) == signature(theirs)
    assert signature(wrong) != signature(theirs)
    # Everything else is the same: only the secret went into the difference.
    assert canonical_query(wrong) == canonical_query(theirs)
    wrong_client = botocore_client(
        "http://127.0.0.1:9000", "us-east-1", "path", secret=WRONG_SECRET
    )
    assert signature(wrong) == signature(botocore_url(wrong_client, BUCKET, name, expires=900))


def test_each_part_of_the_request_is_signed() -> None:
    """Change one thing at a time: the signature must change each time."""
    storage = make_storage(ADDRESSING[0][1])
    base = signature(stowage_url(storage, "a.txt", expire=900))
    variants = [
        stowage_url(storage, "b.txt", expire=900),
        stowage_url(storage, "a.txt", expire=901),
        stowage_url(storage, "a.txt", expire=900, method="PUT"),
        stowage_url(storage, "a.txt", expire=900, parameters={"ResponseContentType": "x/y"}),
        stowage_url(make_storage(ADDRESSING[0][1], region_name="eu-west-1"), "a.txt", expire=900),
        stowage_url(make_storage(ADDRESSING[0][1], session_token=TOKEN), "a.txt", expire=900),
    ]
    with frozen_clocks(NOW + dt.timedelta(seconds=1)):
        later = storage.url("a.txt", expire=900)
    assert len({base, *map(signature, variants), signature(later)}) == len(variants) + 2


# -- browser POST forms ----------------------------------------------------------------


def _expiration(policy: Mapping[str, Any]) -> dt.datetime:
    text = str(policy["expiration"]).replace(".000Z", "Z")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _conditions(policy: Mapping[str, Any]) -> list[str]:
    return sorted(json.dumps(c, sort_keys=True) for c in policy["conditions"])


def _decode(policy: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(policy))
    return decoded


def _botocore_post_signature(policy: str, region: str, secret: str = SECRET) -> str:
    """Sign a POST policy with botocore's own SigV4 POST signer at the frozen instant."""
    from botocore.auth import S3SigV4PostAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = S3SigV4PostAuth(Credentials(ACCESS, secret), "s3", region)
    request = AWSRequest(method="POST", url="https://example.com/")
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    return str(auth.signature(policy, request))


@pytest.mark.parametrize(
    ("max_size", "content_type", "token"),
    [
        (None, None, None),
        (1000, None, None),
        (5 * 1024 * 1024, "image/png", None),
        (None, "text/plain; charset=utf-8", TOKEN),
    ],
)
@pytest.mark.parametrize(("_id", "options", "endpoint", "style"), ADDRESSING)
def test_presigned_post_matches_botocore(
    _id: str,
    options: dict[str, Any],
    endpoint: str,
    style: str,
    max_size: int | None,
    content_type: str | None,
    token: str | None,
) -> None:
    region = _region(options)
    storage = make_storage(options, session_token=token, location="up")
    with frozen_clocks():
        ours = storage.presigned_post(
            "avatars/me é.png", expire=600, max_size=max_size, content_type=content_type
        )
    conditions: list[Any] = []
    fields: dict[str, str] = {}
    if content_type:
        conditions.append({"Content-Type": content_type})
        fields["Content-Type"] = content_type
    if max_size is not None:
        conditions.append(["content-length-range", 0, max_size])
    client = botocore_client(endpoint, region, style, token=token)
    with frozen_clocks():
        theirs = client.generate_presigned_post(
            BUCKET, "up/avatars/me é.png", Fields=fields, Conditions=conditions, ExpiresIn=600
        )
    # botocore ends a virtual-hosted form URL with "/": the same root either way.
    assert ours["url"] == theirs["url"].removesuffix("/")
    ours_fields, theirs_fields = dict(ours["fields"]), dict(theirs["fields"])
    ours_policy = _decode(ours_fields.pop("policy"))
    theirs_policy = _decode(theirs_fields.pop("policy"))
    ours_signature = ours_fields.pop("x-amz-signature")
    theirs_fields.pop("x-amz-signature")
    assert ours_fields == theirs_fields
    assert _expiration(ours_policy) == _expiration(theirs_policy) == NOW + dt.timedelta(minutes=10)
    assert _conditions(ours_policy) == _conditions(theirs_policy)
    # The policy's text differs in form only (".000Z"), so botocore signs ours.
    assert ours_signature == _botocore_post_signature(ours["fields"]["policy"], region)
    assert ours_signature != _botocore_post_signature(
        ours["fields"]["policy"], region, WRONG_SECRET
    )


def post_form(form: Mapping[str, Any], body: bytes, filename: str = "upload.bin") -> httpx.Response:
    """POST ``body`` as a browser would with ``form`` (the file field goes last)."""
    content_type = form["fields"].get("Content-Type", "application/octet-stream")
    return httpx.post(
        form["url"],
        data=dict(form["fields"]),
        files={"file": (filename, body, content_type)},
        timeout=10,
    )


def test_presigned_post_uploads_to_moto(s3_server: MotoServer, s3_bucket: str) -> None:
    storage = S3Storage(location="forms", **s3_server.options(s3_bucket))
    form = storage.presigned_post("in/photo é 1.png", max_size=64, content_type="image/png")
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    response = post_form(form, body)
    assert response.status_code in (200, 201, 204), response.text
    assert storage.open("in/photo é 1.png").read() == body
    got = s3_server.boto3().get_object(Bucket=s3_bucket, Key="forms/in/photo é 1.png")
    assert got["Body"].read() == body
    # moto 5.2 checks neither the policy nor its signature (its POST handler
    # reads only the key and the file), so an upload over max_size is stored
    # all the same; S3 refuses it with EntityTooLarge. What can be checked
    # here is that the signed policy carries the limit.
    policy = _decode(form["fields"]["policy"])
    assert ["content-length-range", 0, 64] in policy["conditions"]
    assert {"key": "forms/in/photo é 1.png"} in policy["conditions"]


# -- fetched from real servers ------------------------------------------------------------


def fetch(
    url: str, *, method: str = "GET", data: bytes | None = None
) -> tuple[int, bytes, Message]:
    """Send one request; return status, body and headers, whatever the status."""
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read(), response.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read(), exc.headers


class Served:
    """A bucket on a real server, its stowage options and a way to put bytes in."""

    def __init__(self, kind: str, server: S3rver | MotoServer) -> None:
        self.kind = kind
        self.server = server
        self.bucket = server.create_bucket()
        self.options = server.options(self.bucket)
        self.endpoint = server.endpoint

    def put(self, key: str, body: bytes) -> None:
        """Upload ``body`` with boto3 (independent of the driver under test)."""
        self.server.boto3().put_object(Bucket=self.bucket, Key=key, Body=body)

    def storage(self, **extra: Any) -> S3Storage:
        """Return a signing S3Storage on this bucket."""
        return S3Storage(**{**self.options, **extra})


@pytest.fixture(params=["s3rver", "moto"])
def served(request: pytest.FixtureRequest) -> Served:
    """Return a fresh bucket on s3rver, then on moto."""
    fixture = "s3rver" if request.param == "s3rver" else "s3_server"
    return Served(request.param, request.getfixturevalue(fixture))


def _body(name: str) -> bytes:
    return f"body of {name} / {secrets.token_hex(4)}\n".encode() + bytes(range(256))


def test_plain_signed_get_fetches_the_bytes(served: Served) -> None:
    body = _body("plain")
    served.put("plain.bin", body)
    url = served.storage().url("plain.bin", expire=60)
    assert url.startswith(f"{served.endpoint}/{served.bucket}/plain.bin?X-Amz-Algorithm=")
    status, got, _ = fetch(url)
    assert (status, got) == (200, body)


@pytest.mark.parametrize("name", NAMES)
def test_every_name_fetches_back_byte_for_byte(served: Served, name: str) -> None:
    body = _body(name)
    served.put(f"names/{name}", body)
    status, got, _ = fetch(served.storage(location="names").url(name))
    assert (status, got) == (200, body)


def test_response_overrides_reach_the_response(served: Served) -> None:
    served.put("report.bin", b"%PDF-1.7 tiny")
    disposition = "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    url = served.storage().url(
        "report.bin",
        parameters={
            "ResponseContentDisposition": disposition,
            "ResponseContentType": "application/pdf",
            "ResponseCacheControl": "no-store",
            "ResponseContentLanguage": "fr-CA",
        },
    )
    status, got, headers = fetch(url)
    assert (status, got) == (200, b"%PDF-1.7 tiny")
    assert headers["Content-Disposition"] == disposition
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Language"] == "fr-CA"


@pytest.mark.parametrize("name", [NAMES[0], NAMES[6]])
def test_presigned_put_uploads_and_reads_back(served: Served, name: str) -> None:
    storage = served.storage(location="direct")
    body = _body(name)
    status, _, _ = fetch(storage.url(name, method="PUT", expire=300), method="PUT", data=body)
    assert status == 200
    assert storage.open(name).read() == body
    got = served.server.boto3().get_object(Bucket=served.bucket, Key=f"direct/{name}")
    assert got["Body"].read() == body


def test_custom_domain_signed_on_the_servers_own_address(served: Served) -> None:
    body = _body("cdn")
    served.put("cdn/img/a b é.txt", body)
    host = urlsplit(served.endpoint).netloc
    storage = served.storage(
        custom_domain=f"{host}/{served.bucket}",
        url_protocol="http:",
        sign_custom_domain=True,
        location="cdn",
    )
    url = storage.url("img/a b é.txt")
    assert url.startswith(f"http://{host}/{served.bucket}/cdn/img/a%20b%20%C3%A9.txt?X-Amz-")
    status, got, _ = fetch(url)
    assert (status, got) == (200, body)


def test_expired_url_is_refused_by_s3rver(s3rver: S3rver) -> None:
    """s3rver checks X-Amz-Date + X-Amz-Expires against its own clock.

    moto does not check expiry, so this runs on s3rver only. The URLs are
    signed with the signer's clock set back an hour: no waiting.
    """
    served = Served("s3rver", s3rver)
    served.put("old.txt", b"still here")
    storage = served.storage()
    with frozen_clocks(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)):
        expired = storage.url("old.txt", expire=60)
        still_valid = storage.url("old.txt", expire=7200)
    status, body, _ = fetch(expired)
    assert status == 403
    assert b"AccessDenied" in body
    assert b"expired" in body
    assert fetch(still_valid)[:2] == (200, b"still here")


def test_unknown_access_key_is_refused_by_s3rver(s3rver: S3rver) -> None:
    served = Served("s3rver", s3rver)
    served.put("k.txt", b"x")
    storage = served.storage(access_key="NOT-A-KNOWN-KEY")
    status, body, _ = fetch(storage.url("k.txt"))
    assert status == 403
    assert b"InvalidAccessKeyId" in body


def test_presigned_post_uploads_to_s3rver(s3rver: S3rver) -> None:
    served = Served("s3rver", s3rver)
    storage = served.storage(location="forms")
    form = storage.presigned_post("in/a b é.txt", max_size=1000, content_type="text/plain")
    # s3rver reads the key and the file and ignores the policy (as moto does),
    # so only the upload itself is checked here.
    response = post_form(form, b"posted")
    assert response.status_code in (200, 201, 204), response.text
    assert storage.open("in/a b é.txt").read() == b"posted"


# -- moto checking header signatures ---------------------------------------------------------


def test_moto_auth_accepts_the_right_key(moto_auth: AuthMotoServer) -> None:
    storage = S3Storage(location=f"ok-{secrets.token_hex(4)}", **moto_auth.options())
    name = storage.save("docs/a b é.txt", ContentFile(b"signed by the right key"))
    storage.save("docs/second.txt", ContentFile(b"2"))
    assert storage.open(name).read() == b"signed by the right key"
    assert storage.exists(name)
    assert storage.size(name) == len(b"signed by the right key")
    assert storage.listdir("docs") == ([], ["a b é.txt", "second.txt"])
    storage.delete("docs/second.txt")
    # exists() of a missing name also lists it as a directory; obstore sends a
    # space in a list prefix as "+", which moto then verifies as a literal "+",
    # so the missing name here has no space.
    assert not storage.exists("docs/second.txt")
    assert storage.listdir("docs") == ([], ["a b é.txt"])
    storage.delete(name)
    assert storage.listdir("docs") == ([], [])


def _refusals(storage: S3Storage) -> dict[str, Callable[[], object]]:
    return {
        "save": lambda: storage.save("new.txt", ContentFile(b"x")),
        "open": lambda: storage.open("seed.txt").read(),
        "exists": lambda: storage.exists("seed.txt"),
        "size": lambda: storage.size("seed.txt"),
        "listdir": lambda: storage.listdir(""),
        "delete": lambda: storage.delete("seed.txt"),
    }


@pytest.mark.parametrize("operation", ["save", "open", "exists", "size", "listdir", "delete"])
def test_moto_auth_refuses_a_wrong_secret(moto_auth: AuthMotoServer, operation: str) -> None:
    prefix = f"bad-{secrets.token_hex(4)}"
    moto_auth.boto3().put_object(Bucket=moto_auth.bucket, Key=f"{prefix}/seed.txt", Body=b"s")
    wrong = S3Storage(location=prefix, **moto_auth.options(secret_key=WRONG_SECRET))
    with pytest.raises(AccessDenied) as caught:
        _refusals(wrong)[operation]()
    assert caught.value.__cause__ is not None
    assert WRONG_SECRET not in str(caught.value)
    assert moto_auth.secret_key not in str(caught.value)
    assert quote(WRONG_SECRET, safe="") not in str(caught.value)
    # Nothing changed: the seed is still there and nothing new was written.
    keys = moto_auth.boto3().list_objects_v2(Bucket=moto_auth.bucket, Prefix=f"{prefix}/")
    assert [o["Key"] for o in keys.get("Contents", [])] == [f"{prefix}/seed.txt"]


# -- requests signed in their headers (stowage's own multipart calls) -------------------------

#: (method, query, headers, body) of the calls a large create makes.
HEADER_SIGNED = [
    ("POST", {"uploads": ""}, {"Content-Type": "text/plain", "x-amz-meta-owner": " a  b "}, b""),
    ("PUT", {"partNumber": "3", "uploadId": "id/with+chars=="}, {}, b"part bytes"),
    (
        "POST",
        {"uploadId": "abc"},
        {"If-None-Match": "*", "Content-Type": "application/xml"},
        b"<x/>",
    ),
    ("DELETE", {"uploadId": "abc"}, {}, b""),
    ("GET", {"uploads": "", "prefix": "a b/é", "key-marker": "k~1"}, {}, b""),
]


@pytest.mark.parametrize("token", [None, TOKEN], ids=["keys", "token"])
@pytest.mark.parametrize(("method", "query", "headers", "body"), HEADER_SIGNED)
@pytest.mark.parametrize("name", NAMES[:2] + NAMES[4:])
def test_header_signatures_match_botocore(
    name: str,
    method: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    token: str | None,
) -> None:
    import hashlib

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    payload = hashlib.sha256(body).hexdigest()
    target, ours = _sigv4.sign_headers(
        method=method,
        scheme="http",
        host="127.0.0.1:9000",
        path=f"/{BUCKET}/{name}",
        query=query,
        headers=headers,
        region="eu-west-1",
        access_key=ACCESS,
        secret_key=SECRET,
        session_token=token,
        payload_hash=payload,
        now=NOW,
    )
    request = AWSRequest(
        method=method, url=f"http://127.0.0.1:9000{target}", headers=headers, data=body
    )
    with frozen_clocks():
        S3SigV4Auth(Credentials(ACCESS, SECRET, token), "s3", "eu-west-1").add_auth(request)
    assert urlsplit(request.url).path == urlsplit(f"http://x{target}").path
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"] == payload
    assert ours["x-amz-date"] == NOW.strftime("%Y%m%dT%H%M%SZ")


def test_moto_auth_accepts_a_large_create_signed_in_headers(moto_auth: AuthMotoServer) -> None:
    storage = S3Storage(
        location=f"mp-{secrets.token_hex(4)}", multipart_threshold=0, **moto_auth.options()
    )
    data = b"signed in parts " * 1000
    name = storage.save("docs/a b é.txt", ContentFile(data))
    assert storage.open(name).read() == data
    with pytest.raises(FileExistsError):
        storage.driver.put(storage.key(name), ContentFile(data), size=len(data), if_absent=True)
    assert storage.driver.multipart.pending("") == []  # type: ignore[attr-defined]


def test_moto_auth_refuses_a_large_create_with_a_wrong_secret(moto_auth: AuthMotoServer) -> None:
    prefix = f"bad-mp-{secrets.token_hex(4)}"
    right = S3Storage(location=prefix, **moto_auth.options())
    right.driver.probe_conditional_writes()  # type: ignore[attr-defined]
    wrong = S3Storage(
        location=prefix, multipart_threshold=0, **moto_auth.options(secret_key=WRONG_SECRET)
    )
    with pytest.raises(AccessDenied) as caught:
        wrong.driver.put(wrong.key("new.bin"), ContentFile(b"x" * 100), size=100, if_absent=True)
    assert WRONG_SECRET not in str(caught.value)
    keys = moto_auth.boto3().list_objects_v2(Bucket=moto_auth.bucket, Prefix=f"{prefix}/")
    assert keys.get("Contents", []) == []
