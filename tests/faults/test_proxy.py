"""The fault proxy itself, against a plain local HTTP server."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faults.proxy import Fault, FaultProxy

BODY = b"0123456789" * 10_000


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_PUT(self) -> None:
        received = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(received)))
        self.end_headers()
        self.wfile.write(received)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy(server.server_address[1])
    yield proxy
    proxy.close()
    server.shutdown()
    server.server_close()


def fetch(proxy: FaultProxy) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def put(proxy: FaultProxy, body: bytes) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("PUT", "/", body=body)
        return conn.getresponse().read()
    finally:
        conn.close()


def test_passes_through(proxy: FaultProxy) -> None:
    assert fetch(proxy) == (200, BODY)


def test_injects_a_status(proxy: FaultProxy) -> None:
    proxy.inject(Fault("status", status=503))
    status, body = fetch(proxy)
    assert status == 503
    assert body == b"injected 503"
    assert fetch(proxy) == (200, BODY)


def test_truncates_a_body(proxy: FaultProxy) -> None:
    proxy.inject(Fault("truncate", after=5000))
    with pytest.raises(http.client.IncompleteRead):
        fetch(proxy)


def test_resets_a_connection(proxy: FaultProxy) -> None:
    proxy.inject(Fault("reset"))
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        fetch(proxy)
    assert proxy.injected == ["reset"]


def test_stalls_then_delivers(proxy: FaultProxy) -> None:
    proxy.inject(Fault("stall", seconds=0.3))
    assert fetch(proxy) == (200, BODY)


def test_cuts_every_connection_after_some_bytes_sent(proxy: FaultProxy) -> None:
    proxy.cut_after(len(BODY) // 2)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        put(proxy, BODY * 4)
    assert proxy.injected == ["cut"]
    assert fetch(proxy) == (200, BODY)  # later connections pass
