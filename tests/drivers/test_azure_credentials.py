"""Azure token credentials and managed identity, end to end on Azurite over https.

Azurite takes bearer tokens only over https and with ``--oauth basic``; it
then checks a token's claims (issuer, audience, not-before, expiry) but not
its signature, so these tests mint unsigned JWTs with valid claims. A token
Azurite refuses (expired, wrong audience) proves the token really reaches it.
The managed identity's token endpoint is a small fake on loopback that
counts its requests; nothing here reaches a metadata service.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from azure.core.credentials import AccessToken
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import override_settings

from stowage import AzureStorage
from stowage.drivers import azure as azure_driver
from stowage.drivers._azure_auth import SAS_VERSION, STORAGE_SCOPE, TokenCredentialProvider
from stowage.exceptions import AccessDenied, ServiceUnavailable, UnsupportedOperation
from tests.servers.azurite import ACCOUNT, Azurite

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECT_ID = "0a1b2c3d-0000-4000-8000-00000000c0de"


def mint_token(*, lifetime: int = 3600, audience: str = "https://storage.azure.com") -> str:
    """Return an unsigned JWT whose claims Azurite's basic OAuth check accepts."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": OBJECT_ID,
        "tid": TENANT,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class RecordingCredential:
    """A token credential as azure-identity's: get_token(*scopes) -> AccessToken."""

    def __init__(self, **token: Any) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(mint_token(**self.token), int(time.time()) + 3600)


@pytest.fixture
def https_options(azurite_oauth: Azurite) -> dict[str, Any]:
    """Return OPTIONS for a new container on the https Azurite, without any credential."""
    options = azurite_oauth.options(azurite_oauth.create_container())
    del options["account_key"]
    return options


@pytest.fixture
def tls(azurite_oauth: Azurite) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(azurite_oauth.certificate))


def _fetch(url: str, tls: ssl.SSLContext) -> tuple[bytes, Any]:
    with urllib.request.urlopen(url, timeout=10, context=tls) as response:
        return response.read(), response.headers


def test_token_credential_works_end_to_end(
    https_options: dict[str, Any], azurite_oauth: Azurite
) -> None:
    credential = RecordingCredential()
    storage = AzureStorage(token_credential=credential, **https_options)
    name = storage.save("docs/a.txt", ContentFile(b"by token"))
    assert storage.open(name).read() == b"by token"
    assert storage.exists(name)
    assert storage.listdir("docs") == ([], ["a.txt"])
    assert storage.size(name) == 8
    container = https_options["azure_container"]
    blob = azurite_oauth.client().get_blob_client(container, f"docs/{name.split('/')[-1]}")
    assert blob.download_blob().readall() == b"by token"
    storage.delete(name)
    assert not storage.exists(name)
    # One token served every request: it is cached until shortly before it expires.
    assert credential.scopes == [(STORAGE_SCOPE,)]


def test_token_credential_lists_for_exists(https_options: dict[str, Any]) -> None:
    """exists() is one List Blobs call carrying the credential's bearer token."""
    storage = AzureStorage(token_credential=RecordingCredential(), **https_options)
    storage.save("docs/a.txt", ContentFile(b"x"))
    lister = storage.driver._lister
    assert lister is not None
    sent: list[dict[str, str]] = []
    send = lister.pool.send

    def recorded(method: str, target: str, headers: dict[str, str], body: Any = None) -> Any:
        sent.append(headers)
        return send(method, target, headers, body)

    lister.pool.send = recorded  # type: ignore[method-assign]
    assert storage.exists("docs")
    assert storage.exists("docs/a.txt")
    assert not storage.exists("docs/a")
    assert len(sent) == 3
    assert all(h["Authorization"].startswith("Bearer ") for h in sent)


def test_token_credential_serves_async_calls(https_options: dict[str, Any]) -> None:
    import asyncio

    credential = RecordingCredential()
    storage = AzureStorage(token_credential=credential, **https_options)

    async def scenario() -> None:
        name = await storage.asave("async/a.txt", ContentFile(b"async token"))
        assert await storage.aexists(name)
        assert await storage.asize(name) == 11
        await storage.adelete(name)
        assert not await storage.aexists(name)

    asyncio.run(scenario())
    assert credential.scopes == [(STORAGE_SCOPE,)]


def test_token_credential_from_the_django_storages_setting(https_options: dict[str, Any]) -> None:
    credential = RecordingCredential()
    with override_settings(AZURE_TOKEN_CREDENTIAL=credential):
        storage = AzureStorage(**https_options)
        storage.save("s.txt", ContentFile(b"s"))
    assert credential.scopes == [(STORAGE_SCOPE,)]


@pytest.mark.parametrize(
    "token", [{"lifetime": -600}, {"audience": "https://vault.azure.net"}], ids=["expired", "aud"]
)
def test_a_token_azurite_refuses_is_access_denied(
    https_options: dict[str, Any], token: dict[str, Any]
) -> None:
    storage = AzureStorage(token_credential=RecordingCredential(**token), **https_options)
    with pytest.raises(AccessDenied):
        storage.save("refused.txt", ContentFile(b"x"))


def test_a_failing_credential_is_access_denied_naming_the_option(
    https_options: dict[str, Any],
) -> None:
    class Failing:
        def get_token(self, *scopes: str) -> AccessToken:
            raise RuntimeError("no identity found\nthe long tale of every source tried")

    storage = AzureStorage(token_credential=Failing(), **https_options)
    with pytest.raises(AccessDenied, match=r"token_credential.*no identity found") as caught:
        storage.exists("x")
    assert "long tale" not in str(caught.value)


def test_credentials_that_cannot_serve_tokens_are_refused(https_options: dict[str, Any]) -> None:
    class Asynchronous:
        async def get_token(self, *scopes: str) -> AccessToken:
            raise AssertionError("never awaited")

    class Untyped:
        def get_token(self, *scopes: str) -> str:
            return "a bare string"

    with pytest.raises(ImproperlyConfigured, match="'token_credential' must have"):
        AzureStorage(token_credential="a token", **https_options).driver  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match="synchronous"):
        AzureStorage(token_credential=Asynchronous(), **https_options).driver  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match="must return an AccessToken"):
        AzureStorage(token_credential=Untyped(), **https_options).exists("x")


def test_the_provider_refreshes_shortly_before_expiry() -> None:
    class Clocked:
        def __init__(self) -> None:
            self.calls = 0

        def get_token(self, *scopes: str) -> AccessToken:
            self.calls += 1
            return AccessToken(f"token-{self.calls}", 10_000 + 3600)

    now = [10_000.0]
    credential = Clocked()
    provider = TokenCredentialProvider(credential, clock=lambda: now[0])
    first = provider()
    assert first["token"] == "token-1"
    assert first["expires_at"] == dt.datetime.fromtimestamp(13_600, dt.UTC)
    now[0] = 13_600 - 301  # more than five minutes left: the cached token
    assert provider()["token"] == "token-1"
    now[0] = 13_600 - 299  # under five minutes left: a new one
    assert provider()["token"] == "token-2"
    assert credential.calls == 2

    class ShortLived(Clocked):
        def get_token(self, *scopes: str) -> AccessToken:
            self.calls += 1
            return AccessToken(f"short-{self.calls}", int(now[0]) + 60)

    now[0] = 50_000.0
    short = ShortLived()
    provider = TokenCredentialProvider(short, clock=lambda: now[0])
    provider()
    now[0] += 29  # a 60 s token is kept for half its life
    provider()
    assert short.calls == 1
    now[0] += 2
    provider()
    assert short.calls == 2


def test_a_key_wins_over_token_credentials_as_in_django_storages(
    azurite_oauth: Azurite,
) -> None:
    credential = RecordingCredential()
    options = azurite_oauth.options(azurite_oauth.create_container())
    storage = AzureStorage(token_credential=credential, **options)
    storage.save("k.txt", ContentFile(b"k"))
    assert credential.scopes == []


# User-delegation SAS URLs signed with the token credential's delegation key.

NAMES = ["plain.txt", "a b.txt", "p%c #1.txt", "ünï/cödé.txt", "x!'()*&$@=;:+,.txt"]


@pytest.mark.parametrize("name", NAMES)
def test_user_delegation_sas_urls_fetch_from_azurite(
    https_options: dict[str, Any], tls: ssl.SSLContext, name: str
) -> None:
    storage = AzureStorage(token_credential=RecordingCredential(), **https_options)
    storage.save(name, ContentFile(b"delegated"))
    url = storage.url(name, parameters={"ResponseContentDisposition": "attachment; x=1"})
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["skoid"] == OBJECT_ID
    assert query["sktid"] == TENANT
    body, headers = _fetch(url, tls)
    assert body == b"delegated"
    assert headers["Content-Disposition"] == "attachment; x=1"


def test_user_delegation_sas_matches_generate_blob_sas(
    https_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.storage.blob._shared_access_signature as sdk_sas
    from azure.storage.blob import UserDelegationKey, generate_blob_sas

    storage = AzureStorage(token_credential=RecordingCredential(), **https_options)
    url = storage.url("dir/a b é.txt", parameters={"ResponseContentType": "text/csv"})
    ours = storage.driver._delegation  # type: ignore[attr-defined]
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = ours.signed_oid, ours.signed_tid
    key.signed_start, key.signed_expiry = ours.signed_start, ours.signed_expiry
    key.signed_service, key.signed_version = ours.signed_service, ours.signed_version
    key.value = ours.value
    query = dict(parse_qsl(urlsplit(url).query))
    monkeypatch.setattr(sdk_sas, "X_MS_VERSION", SAS_VERSION)
    signed: list[str] = []
    generate_blob_sas(
        ACCOUNT,
        https_options["azure_container"],
        "dir/a b é.txt",
        user_delegation_key=key,
        permission=query["sp"],
        expiry=query["se"],
        content_type="text/csv",
        sts_hook=signed.append,
    )
    # The SDK always writes its newest layout, which adds two lines after the
    # encryption scope (signed request headers and query parameters, empty
    # here); SAS_VERSION's layout, the one Azurite checks, has neither.
    lines = signed[0].split("\n")
    assert lines[21:23] == ["", ""]
    del lines[21:23]
    digest = hmac.new(base64.b64decode(ours.value), "\n".join(lines).encode(), hashlib.sha256)
    assert base64.b64encode(digest.digest()).decode() == query["sig"]


def test_the_delegation_key_is_fetched_once_for_many_urls(
    https_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tls: ssl.SSLContext
) -> None:
    fetched: list[dt.datetime] = []
    fetch = azure_driver.fetch_user_delegation_key

    def counting(*args: Any, **kwargs: Any) -> Any:
        fetched.append(kwargs["start"])
        return fetch(*args, **kwargs)

    monkeypatch.setattr(azure_driver, "fetch_user_delegation_key", counting)
    storage = AzureStorage(token_credential=RecordingCredential(), **https_options)
    storage.save("many.txt", ContentFile(b"m"))
    urls = [storage.url("many.txt", expire=dt.timedelta(days=d)) for d in (1, 3, 6)]
    assert len(fetched) == 1
    assert all(_fetch(url, tls)[0] == b"m" for url in urls)
    with pytest.raises(UnsupportedOperation, match="at most 7 days"):
        storage.url("many.txt", expire=dt.timedelta(days=8))


def test_a_refused_token_fails_signing_with_access_denied(https_options: dict[str, Any]) -> None:
    storage = AzureStorage(token_credential=RecordingCredential(lifetime=-600), **https_options)
    with pytest.raises(AccessDenied, match="user delegation key"):
        storage.url("x.txt")


# A user-assigned managed identity: client_id alone, its token endpoint faked.


class _Metadata(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        now = int(time.time())
        body = json.dumps(
            {
                "access_token": mint_token(),
                "client_id": "ignored",
                "expires_in": "3600",
                "expires_on": str(now + 3600),
                "ext_expires_in": "3600",
                "not_before": str(now),
                "resource": "https://storage.azure.com",
                "token_type": "Bearer",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def metadata() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """Run a fake managed-identity token endpoint; yield its URL and its requests."""
    requests: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (_Metadata,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metadata/identity/oauth2/token", requests
    server.shutdown()
    server.server_close()
    thread.join()


def test_client_id_alone_is_a_user_assigned_managed_identity(
    https_options: dict[str, Any],
    metadata: tuple[str, list[tuple[str, dict[str, str]]]],
    tls: ssl.SSLContext,
) -> None:
    endpoint, requests = metadata
    storage = AzureStorage(client_id="my-identity", msi_endpoint=endpoint, **https_options)
    name = storage.save("mi.txt", ContentFile(b"managed"))
    assert storage.open(name).read() == b"managed"
    assert storage.exists(name)
    assert len(requests) == 1  # obstore caches the token too
    path, headers = requests[0]
    query = parse_qs(urlsplit(path).query)
    assert query["client_id"] == ["my-identity"]
    assert query["resource"] == ["https://storage.azure.com"]
    assert headers["metadata"] == "true"
    # Its URLs are obstore's user-delegation SAS: plain names only.
    assert _fetch(storage.url(name), tls)[0] == b"managed"
    with pytest.raises(UnsupportedOperation, match="token_credential"):
        storage.url("a b.txt")
    with pytest.raises(UnsupportedOperation, match="token_credential"):
        storage.url(name, parameters={"ResponseContentType": "text/plain"})


def test_the_client_id_setting_names_the_managed_identity(
    https_options: dict[str, Any], metadata: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    endpoint, requests = metadata
    with override_settings(AZURE_CLIENT_ID="from-settings"):
        storage = AzureStorage(msi_endpoint=endpoint, **https_options)
        storage.save("s.txt", ContentFile(b"s"))
    assert parse_qs(urlsplit(requests[0][0]).query)["client_id"] == ["from-settings"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"client_secret": "s", "client_id": "c"}, "'client_secret' needs"),
        ({"client_id": "c", "tenant_id": "t"}, "'tenant_id' is used only"),
        ({"verify": "/nonexistent/ca.pem"}, "'verify'"),
    ],
)
def test_incomplete_identities_are_refused(
    https_options: dict[str, Any], options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        AzureStorage(**{**https_options, **options}).driver  # noqa: B018


def test_verify_false_skips_certificate_checks(https_options: dict[str, Any]) -> None:
    options = {**https_options, "verify": False}
    storage = AzureStorage(token_credential=RecordingCredential(), **options)
    assert storage.save("v.txt", ContentFile(b"v")) == "v.txt"
    url = storage.url("v.txt")
    with urllib.request.urlopen(url, timeout=10, context=ssl._create_unverified_context()) as r:
        assert r.read() == b"v"


def test_an_untrusted_certificate_is_refused(https_options: dict[str, Any]) -> None:
    options = {**https_options, "verify": True, "max_retries": 0}
    storage = AzureStorage(token_credential=RecordingCredential(), **options)
    with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        storage.exists("x")  # stowage's own listing
    retrying = AzureStorage(token_credential=RecordingCredential(), **{**options, "max_retries": 5})
    lister = retrying.driver._lister
    assert lister is not None
    tries: list[str] = []
    send = lister.pool.send

    def counted(method: str, target: str, headers: dict[str, str], body: Any = None) -> Any:
        tries.append(target)
        return send(method, target, headers, body)

    lister.pool.send = counted  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        retrying.exists("x")
    assert len(tries) == 1  # a refused certificate is not tried again
    with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        storage.url("x")
    heads = AzureStorage(token_credential=RecordingCredential(), exists_by_listing=False, **options)
    with pytest.raises(ServiceUnavailable) as caught:
        heads.exists("x")  # obstore's HEAD
    assert "InvalidCertificate" in str(caught.value.__cause__)
