"""Secrets never show, and the defaults are the safe ones.

Each credential kind (S3 keys and session token, Azure account key, SAS
token and connection string, a GCS service-account private key) runs on its
real server in four situations: working, bad credentials, a refused
connection and a missing bucket. Everything a user or an operator could see
is scanned for the secret: ``repr``/``str``/``deconstruct()``, every log
record at DEBUG of every logger (obstore, urllib3, google, azure included)
and the full traceback of every error, chained causes included.

Defaults: URLs are signed, objects private, TLS certificates verified.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import pickle
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.base import ContentFile

from stowage import AzureStorage, GCSStorage, S3Storage, Storage
from stowage.drivers.s3 import S3Options
from stowage.exceptions import AccessDenied, ServiceError, StowageError
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend, TLSProxy
from tests.servers._process import free_port
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from tests.servers.fake_gcs import FakeGCS
from tests.servers.moto import SECRET_KEY, MotoServer

__all__: list[str] = []

SITUATIONS = ["working", "bad-credentials", "refused", "missing-bucket"]
LOGGERS = ["", "stowage", "obstore", "urllib3", "requests", "google", "google.auth", "azure"]
_SESSION_TOKEN = "reliability-session-token-never-shown"
_WRONG_S3_SECRET = "reliability-wrong-secret-never-shown"
_WRONG_ACCOUNT_KEY = base64.b64encode(b"reliability-wrong-account-key-never-shown").decode()


@dataclass
class Case:
    """One credential kind: its secrets and a storage for each situation."""

    name: str
    secrets: list[str]
    make: Callable[[str], Storage]


def _fragments(secret: str) -> list[str]:
    """Return the forms a secret could appear in: as is and URL-quoted."""
    return sorted({secret, quote(secret, safe=""), quote(secret, safe="/")})


def _pem_body(pem: str) -> list[str]:
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return ["PRIVATE KEY", *lines[1:4]]


def _s3(server: MotoServer, bucket: str) -> Case:
    def make(situation: str) -> Storage:
        options = {**server.options(bucket), "session_token": _SESSION_TOKEN, "max_retries": 0}
        if situation == "bad-credentials":
            options["secret_key"] = _WRONG_S3_SECRET
        elif situation == "refused":
            options["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
        elif situation == "missing-bucket":
            options["bucket_name"] = "no-such-bucket-here"
        return S3Storage(**options)

    return Case("s3", [SECRET_KEY, _SESSION_TOKEN, _WRONG_S3_SECRET], make)


def _azure(azurite: Azurite, container: str, kind: str) -> Case:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    def sas(key: str) -> str:
        return generate_container_sas(
            ACCOUNT,
            container,
            account_key=key,
            permission=ContainerSasPermissions(
                read=True, write=True, delete=True, list=True, add=True, create=True
            ),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )

    good_sas, bad_sas = sas(ACCOUNT_KEY), sas(_WRONG_ACCOUNT_KEY)
    signatures = [part.split("=", 1)[1] for part in (good_sas + "&" + bad_sas).split("&")]
    signatures = [value for value in signatures if len(value) > 30]

    def make(situation: str) -> Storage:
        key = _WRONG_ACCOUNT_KEY if situation == "bad-credentials" else ACCOUNT_KEY
        endpoint = azurite.endpoint
        if situation == "refused":
            endpoint = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
        name = "missing" if situation == "missing-bucket" else container
        options: dict[str, Any] = {"azure_container": name, "max_retries": 0}
        if kind == "account-key":
            options.update(account_name=ACCOUNT, account_key=key, endpoint=endpoint)
        elif kind == "sas":
            token = bad_sas if situation == "bad-credentials" else good_sas
            options.update(account_name=ACCOUNT, sas_token=token, endpoint=endpoint)
        else:
            options["connection_string"] = (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                f"AccountKey={key};BlobEndpoint={endpoint};"
            )
        return AzureStorage(**options)

    return Case(f"azure-{kind}", [ACCOUNT_KEY, _WRONG_ACCOUNT_KEY, *signatures], make)


def _gcs(fake_gcs: FakeGCS, bucket: str, account: dict[str, str]) -> Case:
    def make(situation: str) -> Storage:
        options: dict[str, Any] = {
            "bucket_name": "missing-bucket-here" if situation == "missing-bucket" else bucket,
            "custom_endpoint": fake_gcs.url,
            "credentials": account,
            # Requests are anonymous, except with bad credentials: then the
            # key must get a token from a token endpoint that refuses.
            "anonymous": situation != "bad-credentials",
            "retry_timeout": 0.0,
        }
        if situation == "refused":
            options["custom_endpoint"] = f"http://127.0.0.1:{free_port()}"
        return GCSStorage(**options)

    return Case("gcs", _pem_body(account["private_key"]), make)


@pytest.fixture(params=["s3", "azure-account-key", "azure-sas", "azure-connection-string", "gcs"])
def case(request: pytest.FixtureRequest) -> Case:
    """Return each credential kind in turn, on its server."""
    if request.param == "s3":
        return _s3(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))
    if request.param.startswith("azure-"):
        return _azure(
            request.getfixturevalue("azurite"),
            request.getfixturevalue("azure_container"),
            request.param.removeprefix("azure-"),
        )
    return _gcs(
        request.getfixturevalue("fake_gcs"),
        request.getfixturevalue("gcs_bucket"),
        request.getfixturevalue("gcs_service_account"),
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every record of every logger at DEBUG."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    return caplog


def _exercise(storage: Storage) -> list[BaseException]:
    """Run each operation, collecting what raises."""
    operations: list[Callable[[], object]] = [
        lambda: storage.save("secret/probe.txt", ContentFile(b"probe")),
        lambda: storage.open("secret/probe.txt").read(),
        lambda: storage.size("secret/probe.txt"),
        lambda: storage.listdir("secret"),
        lambda: storage.exists("secret/missing.txt"),
        lambda: storage.open("secret/missing.txt").read(),
        lambda: storage.url("secret/probe.txt"),
        lambda: storage.delete("secret/probe.txt"),
    ]
    raised: list[BaseException] = []
    for operation in operations:
        try:
            operation()
        except Exception as exc:
            raised.append(exc)
    return raised


def _scan(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        for form in _fragments(secret):
            assert form not in text, f"a secret appears in {where}"


def _shown(storage: Storage) -> str:
    return "\n".join(
        [
            repr(storage),
            str(storage),
            repr(storage.deconstruct()),  # type: ignore[attr-defined]
            repr(storage.driver_options),
            repr(storage.options),
        ]
    )


@pytest.mark.parametrize("situation", SITUATIONS)
def test_no_secret_in_errors_logs_or_reprs(
    case: Case, situation: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    storage = case.make(situation)
    _scan(_shown(storage), case.secrets, "repr/str/deconstruct()")
    raised = _exercise(storage)
    if situation != "working":
        assert raised, f"{situation}: nothing failed, so no error message was checked"
    for exc in raised:
        assert isinstance(exc, StowageError | FileNotFoundError), repr(exc)
        _scan("".join(traceback.format_exception(exc)), case.secrets, f"an error ({exc!r})")
    records = debug_logs.records
    logged = debug_logs.text + "".join(repr(r.args) + repr(r.__dict__) for r in records)
    _scan(logged, case.secrets, "the logs")
    table = "secrets: texts scanned, no secret found"
    FIGURES.add(table, case.name, f"{situation}: errors", len(raised))
    FIGURES.add(table, case.name, "log records", len(records))


def test_pickled_storage_holds_no_secret(case: Case) -> None:
    storage = case.make("working")
    _exercise(storage)
    dumped = pickle.dumps(storage)
    for secret in case.secrets:
        assert secret.encode() not in dumped


# -- safe defaults -----------------------------------------------------------------------


def test_urls_are_signed_by_default(
    backend_s3: Backend, backend_azure: Backend, backend_gcs: Backend
) -> None:
    markers = {"s3": "X-Amz-Signature=", "azure": "sig=", "gcs": "X-Goog-Signature="}
    for backend in (backend_s3, backend_azure, backend_gcs):
        storage = backend.direct()
        name = storage.save("private.txt", ContentFile(b"private"))
        url = storage.url(name)
        assert markers[backend.name] in url, url
        assert _fetch(url) == (200, b"private")
        FIGURES.add("safe defaults", backend.name, "signed URL")


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_objects_are_private_by_default(
    backend_s3: Backend, s3_server: MotoServer, s3_bucket: str, backend_azure: Backend
) -> None:
    s3 = backend_s3.direct()
    name = s3.save("private.txt", ContentFile(b"private"))
    grants = s3_server.boto3().get_object_acl(Bucket=s3_bucket, Key=name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all("URI" not in g["Grantee"] for g in grants), grants
    FIGURES.add("safe defaults", "s3", "private object")

    azure = backend_azure.direct()
    name = azure.save("private.txt", ContentFile(b"private"))
    status, body = _fetch(azure.driver.public_url(azure.key(name)))
    assert status in (403, 404)
    assert body == b""
    FIGURES.add("safe defaults", "azure", "private object")


def test_gcs_objects_get_no_public_acl_by_default(
    backend_gcs: Backend, fake_gcs: FakeGCS, gcs_bucket: str
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs  # type: ignore[import-untyped]

    client = gcs.Client(
        project="stowage-reliability",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": fake_gcs.url},
    )

    def entities(storage: Storage) -> set[str]:
        name = storage.save("acl.txt", ContentFile(b"private"))
        acl = client.bucket(gcs_bucket).get_blob(name).acl
        acl.reload()
        return {entry["entity"] for entry in acl}

    public = {"allUsers", "allAuthenticatedUsers"}
    # The server does record a public ACL when asked for one: the check can fail.
    assert "allUsers" in entities(backend_gcs.direct(default_acl="publicRead"))
    assert not entities(backend_gcs.direct()) & public
    client.close()
    FIGURES.add("safe defaults", "gcs", "private object")


def test_tls_verification_is_on_by_default(
    backend_s3: Backend, backend_azure: Backend, backend_gcs: Backend, tmp_path: Path
) -> None:
    assert S3Options().verify is True
    for backend in (backend_s3, backend_azure, backend_gcs):
        assert backend.port is not None
        proxy = TLSProxy(backend.port, tmp_path)
        try:
            endpoint = backend.endpoint(proxy.port).replace("http://", "https://")
            storage = backend.make(endpoint, **backend.no_retries)
            with pytest.raises(ServiceError) as caught:
                storage.exists("anything.txt")
            assert not isinstance(caught.value, AccessDenied)
            assert proxy.handshakes == 0, "a client completed a handshake it should refuse"
            if backend.name == "s3":
                # Told not to verify, the same client completes the handshake:
                # the refusal above was the certificate check.
                trusting = backend.make(endpoint, verify=False, **backend.no_retries)
                with contextlib.suppress(ServiceError):
                    trusting.exists("anything.txt")
                assert proxy.handshakes > 0
        finally:
            proxy.close()
        FIGURES.add("safe defaults", backend.name, "self-signed TLS refused")
