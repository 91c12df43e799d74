"""Secrets never show, and the defaults are the safe ones.

Each credential kind (S3 keys and session token, Azure account key, SAS
token and connection string, a GCS service-account private key, SFTP
password and encrypted private key with its passphrase, FTP password as an
option and inside a ``location`` URL, WebDAV password and a token in extra
headers) runs on its real server in four situations: working, bad
credentials, a refused connection and a missing bucket (a missing
directory for SFTP, FTP and WebDAV); SFTP also meets a wrong host key.
Everything a user or an operator could see is scanned for the secret:
``repr``/``str``/``deconstruct()``, every log record at DEBUG of every
logger (obstore, urllib3, google, azure, asyncssh, httpx included) and the
full traceback of every error, chained causes included.

Defaults: URLs are signed, objects private, TLS certificates verified
(FTPS and WebDAV too), unknown SSH host keys refused.
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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.base import ContentFile

from stowage import (
    AzureStorage,
    FTPStorage,
    GCSStorage,
    S3Storage,
    SFTPStorage,
    Storage,
    WebDAVStorage,
)
from stowage.drivers.s3 import S3Options
from stowage.exceptions import AccessDenied, ServiceError, StowageError, UnsupportedOperation
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend, TLSProxy
from tests.servers._process import free_port
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from tests.servers.fake_gcs import FakeGCS
from tests.servers.ftpd import USER as FTP_USER
from tests.servers.ftpd import FTPServer
from tests.servers.moto import SECRET_KEY, MotoServer
from tests.servers.sshd import KEY_PASSPHRASE, SSHServer
from tests.servers.wsgidav import USERNAME as DAV_USER
from tests.servers.wsgidav import WsgiDAV

__all__: list[str] = []

SITUATIONS = ["working", "bad-credentials", "refused", "missing-bucket"]
LOGGERS = [
    "",
    "stowage",
    "obstore",
    "urllib3",
    "requests",
    "google",
    "google.auth",
    "azure",
    "asyncssh",
    "httpx",
    "httpcore",
]
_WRONG_PASSWORD = "reliability-wrong-password-never-shown"
_WRONG_PASSPHRASE = "reliability-wrong-passphrase-never-shown"
_DAV_TOKEN = "reliability-dav-token-never-shown"
#: Where the SFTP, FTP and WebDAV storages say their files are served, so url() gives one.
BASE_URL = "https://files.example.com/media/"
_SESSION_TOKEN = "reliability-session-token-never-shown"
_WRONG_S3_SECRET = "reliability-wrong-secret-never-shown"
_WRONG_ACCOUNT_KEY = base64.b64encode(b"reliability-wrong-account-key-never-shown").decode()


@dataclass
class Case:
    """One credential kind: its secrets and a storage for each situation."""

    name: str
    secrets: list[str]
    make: Callable[[str], Storage]
    #: What url() says when this credential kind cannot give URLs (its documented refusal).
    url_refusal: str | None = None


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

    refusal = "authenticated by a SAS token cannot sign URLs" if kind == "sas" else None
    return Case(f"azure-{kind}", [ACCOUNT_KEY, _WRONG_ACCOUNT_KEY, *signatures], make, refusal)


def _gcs(fake_gcs: FakeGCS, bucket: str, account: dict[str, str]) -> Case:
    def make(situation: str) -> Storage:
        options: dict[str, Any] = {
            "bucket_name": "missing-bucket-here" if situation == "missing-bucket" else bucket,
            "api_endpoint": fake_gcs.url,
            "credentials": account,
            # Requests are anonymous, except with bad credentials: then the
            # key must get a token from a token endpoint that refuses.
            "anonymous": situation != "bad-credentials",
            "retry_timeout": 0.0,
        }
        if situation == "refused":
            options["api_endpoint"] = f"http://127.0.0.1:{free_port()}"
        return GCSStorage(**options)

    return Case("gcs", _pem_body(account["private_key"]), make)


def _sftp(sshd: SSHServer, kind: str) -> Case:
    root = sshd.new_root()
    key_text = sshd.encrypted_key_path.read_text()

    def make(situation: str) -> Storage:
        # A base_url, so url() gives a URL: the success path is scanned too.
        options: dict[str, Any] = {**sshd.options(root), "timeout": 10.0, "base_url": BASE_URL}
        if kind == "password":
            del options["private_key"]
            bad = situation == "bad-credentials"
            options["password"] = _WRONG_PASSWORD if bad else sshd.password
        else:
            options["private_key"] = key_text
            bad = situation == "bad-credentials"
            options["private_key_passphrase"] = _WRONG_PASSPHRASE if bad else KEY_PASSPHRASE
        if situation == "refused":
            options["port"] = free_port()
            options["known_hosts"] = None
            options["accept_unknown_host_keys"] = True
        elif situation == "missing-bucket":
            options["root_path"] = f"{root}/missing/directory"
        elif situation == "wrong-host-key":
            other = Path(root) / "known_hosts"
            line = sshd.host_key_line.split(" ")
            other.write_text(f"{line[0]} {_other_public_key()}\n")
            options["known_hosts"] = str(other)
        return SFTPStorage(**options)

    secrets = [sshd.password, _WRONG_PASSWORD]
    if kind == "key":
        secrets = [*_pem_body(key_text), KEY_PASSPHRASE, _WRONG_PASSPHRASE]
    return Case(f"sftp-{kind}", secrets, make)


def _other_public_key() -> str:
    """Return a freshly made public key as known_hosts lists one (type and key)."""
    import asyncssh

    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    return " ".join(public.split()[:2])


def _ftp(ftpd: FTPServer, kind: str) -> Case:
    from tests.servers.ftpd import PASSWORD

    root = f"/t-{uuid.uuid4().hex[:12]}"

    def make(situation: str) -> Storage:
        password = _WRONG_PASSWORD if situation == "bad-credentials" else PASSWORD
        port = free_port() if situation == "refused" else ftpd.port
        path = f"{root}/missing/directory" if situation == "missing-bucket" else root
        if kind == "location":
            return FTPStorage(
                location=f"ftp://{FTP_USER}:{quote(password)}@127.0.0.1:{port}{path}",
                timeout=10.0,
                base_url=BASE_URL,
            )
        options = ftpd.options(path, password=password, port=port, timeout=10.0, base_url=BASE_URL)
        return FTPStorage(**options)

    return Case(f"ftp-{kind}", [PASSWORD, _WRONG_PASSWORD], make)


def _webdav(wsgidav: WsgiDAV) -> Case:
    url = wsgidav.collection()
    assert wsgidav.password is not None

    def make(situation: str) -> Storage:
        password = _WRONG_PASSWORD if situation == "bad-credentials" else wsgidav.password
        target = url
        if situation == "refused":
            target = f"http://127.0.0.1:{free_port()}/dav/"
        elif situation == "missing-bucket":
            target = f"{url}missing/directory/"
        return WebDAVStorage(
            url=target,
            username=DAV_USER,
            password=password,
            headers={"X-Api-Token": _DAV_TOKEN},
            timeout=10.0,
            base_url=BASE_URL,
        )

    basic = [
        base64.b64encode(f"{DAV_USER}:{p}".encode()).decode()
        for p in (wsgidav.password, _WRONG_PASSWORD)
    ]
    return Case("webdav", [wsgidav.password, _WRONG_PASSWORD, _DAV_TOKEN, *basic], make)


@pytest.fixture(
    params=[
        "s3",
        "azure-account-key",
        "azure-sas",
        "azure-connection-string",
        "gcs",
        "sftp-password",
        "sftp-key",
        "ftp-password",
        "ftp-location",
        "webdav",
    ]
)
def case(request: pytest.FixtureRequest) -> Case:
    """Return each credential kind in turn, on its server."""
    if request.param.startswith("sftp-"):
        return _sftp(request.getfixturevalue("sshd"), request.param.removeprefix("sftp-"))
    if request.param.startswith("ftp-"):
        return _ftp(request.getfixturevalue("ftpd"), request.param.removeprefix("ftp-"))
    if request.param == "webdav":
        return _webdav(request.getfixturevalue("wsgidav_auth"))
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
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every record of every logger at DEBUG."""
    import asyncssh

    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    # asyncssh's most detailed level short of raw packet dumps (which are encrypted).
    asyncssh.set_debug_level(2)
    yield caplog
    asyncssh.set_debug_level(1)


#: The one operation of :func:`_exercise` that fails even when everything works.
_OPEN_MISSING = "open a missing name"


def _exercise(storage: Storage) -> dict[str, Exception]:
    """Run each operation, collecting what raises, by operation."""
    operations: dict[str, Callable[[], object]] = {
        "save": lambda: storage.save("secret/probe.txt", ContentFile(b"probe")),
        "read": lambda: storage.open("secret/probe.txt").read(),
        "size": lambda: storage.size("secret/probe.txt"),
        "listdir": lambda: storage.listdir("secret"),
        "exists": lambda: storage.exists("secret/missing.txt"),
        _OPEN_MISSING: lambda: storage.open("secret/missing.txt").read(),
        "url": lambda: storage.url("secret/probe.txt"),
        "delete": lambda: storage.delete("secret/probe.txt"),
    }
    raised: dict[str, Exception] = {}
    for label, operation in operations.items():
        try:
            operation()
        except Exception as exc:
            raised[label] = exc
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
    _check(case, situation, debug_logs)


@pytest.mark.parametrize("kind", ["password", "key"])
def test_no_secret_when_the_ssh_host_key_is_wrong(
    sshd: SSHServer, kind: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    raised = _check(_sftp(sshd, kind), "wrong-host-key", debug_logs)
    refused = [exc for exc in raised if isinstance(exc, AccessDenied)]
    assert refused, raised
    assert all("does not match" in str(exc) for exc in refused)


def _check(case: Case, situation: str, debug_logs: pytest.LogCaptureFixture) -> list[Exception]:
    """Scan everything shown in ``situation`` for the case's secrets; return the errors."""
    storage = case.make(situation)
    _scan(_shown(storage), case.secrets, "repr/str/deconstruct()")
    by_operation = _exercise(storage)
    raised = list(by_operation.values())
    if situation == "working":
        # Every success path must really run (and be scanned): only the missing name fails,
        # and url() where the credential kind documents that it cannot give URLs.
        expected = {_OPEN_MISSING} | ({"url"} if case.url_refusal else set())
        assert set(by_operation) == expected, f"working: {by_operation!r}"
        assert isinstance(by_operation[_OPEN_MISSING], FileNotFoundError), by_operation
        if case.url_refusal:
            refused = by_operation["url"]
            assert isinstance(refused, UnsupportedOperation), repr(refused)
            assert case.url_refusal in str(refused), repr(refused)
    else:
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
    return raised


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


def test_sftp_refuses_unknown_host_keys_by_default(sshd: SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = {**sshd.options(sshd.new_root()), "known_hosts": str(empty), "timeout": 10.0}
    with pytest.raises(AccessDenied, match="unknown"):
        SFTPStorage(**options).exists("anything.txt")
    # The same server is reached once told to trust it: the refusal was the host key.
    assert not SFTPStorage(**options, accept_unknown_host_keys=True).exists("anything.txt")
    FIGURES.add("safe defaults", "sftp", "unknown host key refused")


def test_ftps_verifies_certificates_by_default(ftpd_tls: FTPServer) -> None:
    options = ftpd_tls.options(timeout=10.0)
    del options["verify"]
    with pytest.raises(ServiceError, match="certificate") as caught:
        FTPStorage(**options).exists("anything.txt")
    assert not isinstance(caught.value, AccessDenied)
    # With the server's certificate as CA bundle the same storage connects.
    assert not FTPStorage(**ftpd_tls.options(timeout=10.0)).exists("anything.txt")
    FIGURES.add("safe defaults", "ftp", "self-signed TLS refused")


def test_webdav_verifies_certificates_by_default(wsgidav_auth: WsgiDAV, tmp_path: Path) -> None:
    proxy = TLSProxy(wsgidav_auth.port, tmp_path)
    try:
        url = f"https://127.0.0.1:{proxy.port}/"
        options = {**wsgidav_auth.options(url), "timeout": 10.0}
        with pytest.raises(ServiceError) as caught:
            WebDAVStorage(**options).exists("anything.txt")
        assert not isinstance(caught.value, AccessDenied)
        assert proxy.handshakes == 0, "a client completed a handshake it should refuse"
        # Told not to verify, the same client completes the handshake.
        assert not WebDAVStorage(**options, verify=False).exists("anything.txt")
        assert proxy.handshakes > 0
    finally:
        proxy.close()
    FIGURES.add("safe defaults", "webdav", "self-signed TLS refused")
