"""Backends under test, the fault proxy between them and their servers, the figures.

A :class:`Backend` builds storages on one service, directly or through a
fault proxy (the endpoint changes, the bucket stays). Each service is one
``backend_<name>`` fixture: adding a driver to the reliability tests is one
fixture here plus its name in the lists the tests parametrize over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stowage import (
    AzureStorage,
    FTPStorage,
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    SFTPStorage,
    Storage,
    WebDAVStorage,
)
from tests.faults.proxy import FaultProxy
from tests.reliability._figures import FIGURES, write
from tests.servers.azurite import Azurite
from tests.servers.fake_gcs import FakeGCS
from tests.servers.ftpd import FTPServer
from tests.servers.moto import MotoServer
from tests.servers.sshd import SSHServer
from tests.servers.wsgidav import WsgiDAV

__all__ = ["Backend", "TLSProxy"]

_HERE = Path(__file__).resolve().parent
_NODE_PREFIX = "tests/reliability/"


@dataclass
class Backend:
    """One storage service under test and how to build storages on it."""

    name: str
    #: Build a storage: endpoint URL (None: the server's own) and extra options.
    make: Callable[..., Storage]
    #: The server's port on 127.0.0.1 (None for in-process backends).
    port: int | None = None
    #: The endpoint URL that reaches the server through 127.0.0.1:<port>.
    endpoint: Callable[[int], str] = str
    #: Options giving quick retries and short timeouts (survivable faults).
    retrying: Mapping[str, Any] = field(default_factory=dict)
    #: Options turning retries off (each fault is final).
    no_retries: Mapping[str, Any] = field(default_factory=dict)
    #: Options whose retries run out quickly (persistent faults).
    few_retries: Mapping[str, Any] = field(default_factory=dict)
    #: Options making large bodies go up in parts, and a size above that (for a
    #: service without parts: a body streamed in several chunks).
    multipart: Mapping[str, Any] = field(default_factory=dict)
    multipart_size: int = 0

    def direct(self, **options: Any) -> Storage:
        """Return a storage talking to the server directly."""
        return self.make(None, **options)

    def through(self, proxy: FaultProxy, **options: Any) -> Storage:
        """Return a fresh storage (fresh connections) reaching the server through ``proxy``."""
        assert self.port is not None, f"{self.name} has no server to proxy"
        return self.make(self.endpoint(proxy.port), **{**self.retrying, **options})


_MiB = 1024 * 1024


@pytest.fixture
def backend_memory() -> Backend:
    """Return the in-memory backend (one fresh namespace per test)."""
    namespace = f"reliability-{uuid.uuid4().hex}"
    return Backend("memory", lambda endpoint, **o: MemoryStorage(namespace=namespace, **o))


@pytest.fixture
def backend_local(tmp_path: Path) -> Backend:
    """Return the local filesystem backend on a fresh directory."""
    root = str(tmp_path / "media")
    return Backend("local", lambda endpoint, **o: LocalStorage(location=root, **o))


@pytest.fixture
def backend_s3(s3_server: MotoServer, s3_bucket: str) -> Backend:
    """Return S3 (moto) on a fresh bucket."""

    def make(endpoint: str | None, **options: Any) -> Storage:
        base = s3_server.options(s3_bucket)
        if endpoint is not None:
            base["endpoint_url"] = endpoint
        return S3Storage(**{**base, **options})

    return Backend(
        "s3",
        make,
        port=s3_server.process.port,
        endpoint=lambda port: f"http://127.0.0.1:{port}",
        retrying={"max_retries": 3, "timeout": 1.0, "connect_timeout": 1.0},
        no_retries={"max_retries": 0, "timeout": 1.0, "connect_timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0, "connect_timeout": 1.0},
        multipart={"multipart_threshold": 1 * _MiB, "multipart_chunksize": 5 * _MiB},
        multipart_size=6 * _MiB,
    )


@pytest.fixture
def backend_azure(azurite: Azurite, azure_container: str) -> Backend:
    """Return Azure (Azurite) on a fresh container."""

    def make(endpoint: str | None, **options: Any) -> Storage:
        base = azurite.options(azure_container)
        if endpoint is not None:
            base["endpoint"] = endpoint
        return AzureStorage(**{**base, **options})

    account = azurite.endpoint.rsplit("/", 1)[-1]
    return Backend(
        "azure",
        make,
        port=azurite.process.port,
        endpoint=lambda port: f"http://127.0.0.1:{port}/{account}",
        retrying={"max_retries": 3, "timeout": 1.0, "connect_timeout": 1.0},
        no_retries={"max_retries": 0, "timeout": 1.0, "connect_timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0, "connect_timeout": 1.0},
        multipart={"multipart_threshold": 1 * _MiB, "multipart_chunksize": 1 * _MiB},
        multipart_size=3 * _MiB,
    )


@pytest.fixture(scope="session")
def gcs_service_account() -> dict[str, str]:
    """Return a service-account key file's content around a key made for this run."""
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
        "project_id": "stowage-reliability",
        "private_key_id": "reliability-key-id",
        "private_key": pem,
        "client_email": "signer@stowage-reliability.iam.gserviceaccount.com",
        "client_id": "1",
        # Never contacted while 'anonymous' is set: the key only signs URLs.
        "token_uri": "http://127.0.0.1:9/token",
    }


@pytest.fixture
def backend_gcs(fake_gcs: FakeGCS, gcs_bucket: str, gcs_service_account: dict[str, str]) -> Backend:
    """Return Google Cloud Storage (fake-gcs-server) on a fresh bucket.

    Requests are anonymous; a service-account key made for the run signs URLs.
    """

    def make(endpoint: str | None, **options: Any) -> Storage:
        base = {
            "bucket_name": gcs_bucket,
            "api_endpoint": endpoint or fake_gcs.url,
            "anonymous": True,
            "credentials": gcs_service_account,
        }
        return GCSStorage(**{**base, **options})

    return Backend(
        "gcs",
        make,
        port=fake_gcs.process.port,
        endpoint=lambda port: f"http://127.0.0.1:{port}",
        retrying={"max_retries": 3, "timeout": 1.0},
        # retry_timeout 0 turns retries off, whatever max_retries says.
        no_retries={"retry_timeout": 0.0, "timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0},
        # The client's single-request limit is fixed at 8 MiB.
        multipart={"blob_chunk_size": 1 * _MiB},
        multipart_size=9 * _MiB,
    )


@pytest.fixture
def backend_sftp(sshd: SSHServer, tmp_path: Path) -> Backend:
    """Return SFTP (OpenSSH sshd) on a fresh directory, logging in with a key.

    Through a proxy the server answers on another port, so a known_hosts
    file listing its key for that port is written: host keys stay checked.
    """
    root = sshd.new_root()
    host_key = sshd.host_key_line.split(" ", 1)[1]

    def make(endpoint: str | None, **options: Any) -> Storage:
        base = sshd.options(root)
        if endpoint is not None:
            known_hosts = tmp_path / f"known_hosts-{endpoint}"
            known_hosts.write_text(f"[127.0.0.1]:{endpoint} {host_key}\n")
            base.update(port=int(endpoint), known_hosts=str(known_hosts))
        return SFTPStorage(**{**base, **options})

    return Backend(
        "sftp",
        make,
        port=sshd.port,
        retrying={"max_retries": 2, "timeout": 1.0},
        no_retries={"max_retries": 0, "timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0},
        multipart_size=3 * _MiB,
    )


@pytest.fixture
def backend_ftp(ftpd: FTPServer) -> Backend:
    """Return FTP (pyftpdlib) on a fresh directory."""
    root = f"/t-{uuid.uuid4().hex[:12]}"

    def make(endpoint: str | None, **options: Any) -> Storage:
        base = ftpd.options(root)
        if endpoint is not None:
            base["port"] = int(endpoint)
        return FTPStorage(**{**base, **options})

    return Backend(
        "ftp",
        make,
        port=ftpd.port,
        retrying={"max_retries": 2, "timeout": 1.0},
        no_retries={"max_retries": 0, "timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0},
        multipart_size=3 * _MiB,
    )


@pytest.fixture
def backend_webdav(wsgidav_auth: WsgiDAV) -> Backend:
    """Return WebDAV (wsgidav, basic authentication) on a fresh collection."""
    url = wsgidav_auth.collection()
    path = url.split(f":{wsgidav_auth.port}", 1)[1]

    def make(endpoint: str | None, **options: Any) -> Storage:
        # The driver retries nothing unless told (max_retries defaults to 0);
        # under load wsgidav resets connections, so these storages retry.
        base = wsgidav_auth.options(url if endpoint is None else endpoint, max_retries=3)
        return WebDAVStorage(**{**base, **options})

    return Backend(
        "webdav",
        make,
        port=wsgidav_auth.port,
        endpoint=lambda port: f"http://127.0.0.1:{port}{path}",
        retrying={"max_retries": 3, "timeout": 1.0},
        no_retries={"max_retries": 0, "timeout": 1.0},
        few_retries={"max_retries": 1, "timeout": 1.0},
        multipart_size=3 * _MiB,
    )


@pytest.fixture
def proxy(backend: Backend) -> Iterator[FaultProxy]:
    """Return a fault proxy in front of the backend's server."""
    assert backend.port is not None
    proxy = FaultProxy(backend.port)
    yield proxy
    proxy.close()


_RUN: dict[str, Any] = {"passed": 0, "failed": 0, "errors": 0, "deselected": 0}
#: Seconds the reliability tests took, set-up and tear-down included (not the rest of a run).
_SPENT = [0.0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the suite ``edges``: `make test` runs it on the oldest and the newest combination.

    It takes minutes, and what it exercises (sockets, TLS, asyncio, threads)
    changes with the Python version rather than Django's; see noxfile.py.
    """
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.edges)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Count tests left out (-k, -m): such a run is not published."""
    _RUN["deselected"] += sum(1 for item in items if _HERE in item.path.parents)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count how the reliability tests ended."""
    if not report.nodeid.startswith(_NODE_PREFIX):
        return
    _SPENT[0] += report.duration
    if report.when == "call" and report.passed:
        _RUN["passed"] += 1
    elif report.failed:
        _RUN["failed" if report.when == "call" else "errors"] += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Record the figures and how the run went, for docs/reliability.md."""
    if not list(FIGURES.tables()):
        return
    items = [item for item in session.items if _HERE in item.path.parents]
    run = {
        **_RUN,
        "tests": len(items),
        "modules": sorted({item.path.name for item in items}),
        "seconds": round(_SPENT[0]),
        "keyword": session.config.getoption("keyword", ""),
        "markers": session.config.getoption("markexpr", ""),
    }
    root = _HERE.parent.parent
    artifacts = Path(os.environ.get("STOWAGE_TEST_ARTIFACTS") or root / "test-artifacts")
    write(FIGURES, artifacts / "reliability-figures.json", run)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the reliability tests counted."""
    tables = list(FIGURES.tables())
    if not tables:
        return
    terminalreporter.section("reliability figures")
    for table, columns, rows in tables:
        terminalreporter.write_line(f"{table}:")
        terminalreporter.write_line("  " + " | ".join(["backend", *columns]))
        for backend, cells in rows.items():
            values = [str(cells.get(column, 0)) for column in columns]
            terminalreporter.write_line("  " + " | ".join([backend, *values]))


class TLSProxy:
    """Serve TLS with a self-signed certificate on 127.0.0.1, forwarding to a plain server.

    A client that verifies certificates refuses it; one told not to verify
    reaches the server behind it.
    """

    def __init__(self, target_port: int, directory: Path) -> None:
        from tests.servers.ftpd import make_certificate

        self.target_port = target_port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(make_certificate(directory))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except OSError:
            client.close()  # the client refused the certificate
            return
        self.handshakes += 1
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=_pipe, args=(secure, upstream), daemon=True).start()
        _pipe(upstream, secure)

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.close()
