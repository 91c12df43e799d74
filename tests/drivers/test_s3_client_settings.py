"""S3 client settings users need: a proxy, a private CA bundle, additional checksums.

A counting HTTP proxy and a TLS front with a private CA stand on 127.0.0.1
before the moto server; the driver reaches moto only through them.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from stowage import S3Storage
from stowage.exceptions import ServiceError
from tests.faults.http_proxy import CountingProxy
from tests.servers.azurite import self_signed_certificate
from tests.servers.moto import MotoServer


def _private_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """Make a CA and a certificate for 127.0.0.1 it signed; return the CA and a TLS context."""
    ca_pem, cert, key = self_signed_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return ca_pem, context


class TlsFront:
    """Terminate TLS on loopback and pass the bytes to a plain server."""

    def __init__(self, target_port: int, context: ssl.SSLContext) -> None:
        self._target = target_port
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.handshakes += 1
        upstream = socket.create_connection(("127.0.0.1", self._target))

        def pipe(source: socket.socket, target: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    server = CountingProxy()
    yield server
    server.close()


def test_requests_go_through_the_configured_proxy(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    # botocore's form: the proxy by scheme, here without one of its own.
    address = proxy.url.removeprefix("http://")
    storage = S3Storage(**s3_server.options(s3_bucket), proxies={"http": address})
    name = storage.save("proxied.txt", ContentFile(b"through the proxy"))
    assert storage.open(name).read() == b"through the proxy"
    assert storage.exists(name)
    assert f"PUT /{s3_bucket}/proxied.txt" in proxy.requests
    assert f"GET /{s3_bucket}/proxied.txt" in proxy.requests
    direct = len(proxy.requests)
    S3Storage(**s3_server.options(s3_bucket)).exists(name)
    assert len(proxy.requests) == direct  # no proxy configured: none used


def test_bad_proxies_are_refused_naming_the_option(s3_server: MotoServer, s3_bucket: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="'proxies'"):
        S3Storage(**s3_server.options(s3_bucket), proxies={"ftp": "x:1"}).driver  # noqa: B018


def test_a_private_ca_bundle_verifies_the_service(
    s3_server: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    ca_pem, context = _private_ca(tmp_path)
    port = int(urllib.parse.urlsplit(s3_server.endpoint).port or 0)
    front = TlsFront(port, context)
    try:
        options = {
            **s3_server.options(s3_bucket),
            "endpoint_url": f"https://127.0.0.1:{front.port}",
        }
        trusting = S3Storage(**options, verify=str(ca_pem), max_retries=0)
        name = trusting.save("tls.txt", ContentFile(b"over TLS"))
        assert trusting.open(name).read() == b"over TLS"
        assert front.handshakes >= 1
        # The public roots alone do not know this CA: refused, not silently trusted.
        with pytest.raises(ServiceError):
            S3Storage(**options, max_retries=0).exists(name)
    finally:
        front.close()


def test_additional_checksums_are_sent_only_when_asked(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    address = proxy.url.removeprefix("http://")
    options = {**s3_server.options(s3_bucket), "proxies": {"http": address}}
    S3Storage(**options).save("plain.txt", ContentFile(b"plain"))
    S3Storage(**options, checksum_algorithm="sha256").save("summed.txt", ContentFile(b"summed"))
    sent = {
        request.rsplit("/", 1)[-1]: "x-amz-checksum-sha256" in headers
        for request, headers in zip(proxy.requests, proxy.headers, strict=True)
        if request.startswith("PUT ")
    }
    assert sent["plain.txt"] is False
    assert sent["summed.txt"] is True


# -- stowage's own calls (large creates) take the same ways ------------------------------------


def test_large_creates_go_through_the_proxy_too(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy
) -> None:
    options = {**s3_server.options(s3_bucket), "proxies": {"http": proxy.url}}
    storage = S3Storage(**options, multipart_threshold=0)
    name = storage.save("parts.txt", ContentFile(b"in parts"))
    assert storage.open(name).read() == b"in parts"
    path = f"/{s3_bucket}/parts.txt"
    calls = [sorted(r.query) for r in proxy.recorded if r.method != "GET" and r.path == path]
    assert calls == [["uploads"], ["partNumber", "uploadId"], ["uploadId"]]


def test_a_large_create_tunnels_through_the_proxy_to_a_private_ca(
    s3_server: MotoServer, s3_bucket: str, proxy: CountingProxy, tmp_path: Path
) -> None:
    ca_pem, context = _private_ca(tmp_path)
    port = int(urllib.parse.urlsplit(s3_server.endpoint).port or 0)
    front = TlsFront(port, context)
    try:
        options = {
            **s3_server.options(s3_bucket),
            "endpoint_url": f"https://127.0.0.1:{front.port}",
            "proxies": {"https": proxy.url},
        }
        storage = S3Storage(**options, verify=str(ca_pem), multipart_threshold=0, max_retries=0)
        name = storage.save("tunnelled.txt", ContentFile(b"through a tunnel"))
        assert storage.open(name).read() == b"through a tunnel"
        assert storage.driver.multipart.pending("") == []  # type: ignore[attr-defined]
        assert set(proxy.tunnels) == {f"127.0.0.1:{front.port}"}
        assert proxy.recorded == []  # every request went through a tunnel, encrypted
        # The public roots alone do not know this CA: stowage's own client refuses it too.
        untrusting = S3Storage(**options, max_retries=0)
        with pytest.raises(ServiceError, match="certificate"):
            untrusting.driver.multipart.pending("")  # type: ignore[attr-defined]
    finally:
        front.close()


def test_a_proxy_stowage_cannot_use_keeps_large_creates_on_obstore(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    from stowage.exceptions import UnsupportedOperation

    options = {**s3_server.options(s3_bucket), "proxies": {"http": "socks5://127.0.0.1:9"}}
    driver = S3Storage(**options).driver
    assert driver.rest.reachable is False  # type: ignore[attr-defined]
    assert driver.creates_directly() is False  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedOperation, match="socks5"):
        driver.multipart.pending("")  # type: ignore[attr-defined]
