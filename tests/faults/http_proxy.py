"""A forward HTTP proxy on loopback that records every request passing through it.

Plain requests (``GET http://127.0.0.1:port/path?query``) are forwarded and
recorded with their headers; ``CONNECT 127.0.0.1:port`` opens a tunnel
(an HTTPS client's, whose requests stay encrypted), recorded as such. Only
127.0.0.1 is ever connected to.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CountingProxy", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    """One request the proxy passed on."""

    method: str
    path: str
    #: The query's parameters, decoded ("uploads": "" for ``?uploads``).
    query: dict[str, str]
    #: Headers by lower-cased name.
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class CountingProxy:
    """Forward HTTP requests and CONNECT tunnels to loopback, recording each."""

    def __init__(self) -> None:
        self.recorded: list[Recorded] = []
        #: Targets of the CONNECT tunnels opened, "127.0.0.1:port".
        self.tunnels: list[str] = []
        #: Answers a request itself when this returns (status, body): a server's refusal.
        self.answer: Callable[[Recorded], tuple[int, bytes] | None] = lambda request: None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                target = urllib.parse.urlsplit(self.path)
                assert target.hostname == "127.0.0.1", "the proxy only forwards to loopback"
                query = dict(urllib.parse.parse_qsl(target.query, keep_blank_values=True))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Recorded(self.command, target.path, query, headers)
                proxy.recorded.append(request)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                own = proxy.answer(request)
                if own is not None:
                    self.send_response(own[0])
                    self.send_header("Content-Length", str(len(own[1])))
                    self.end_headers()
                    self.wfile.write(own[1])
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
                sent = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.request(self.command, path, body=body, headers=sent)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                # A HEAD answer keeps the length of the body it does not carry.
                dropped = {"transfer-encoding", "connection"}
                if self.command != "HEAD":
                    dropped.add("content-length")
                    self.send_header("Content-Length", str(len(data)))
                for key, value in answer.getheaders():
                    if key.lower() not in dropped:
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def do_CONNECT(self) -> None:
                host, _, port = self.path.rpartition(":")
                assert host == "127.0.0.1", "the proxy only tunnels to loopback"
                proxy.tunnels.append(self.path)
                upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                _tunnel(self.connection, upstream)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def requests(self) -> list[str]:
        """Return each recorded request as ``METHOD /path``."""
        return [str(request) for request in self.recorded]

    @property
    def headers(self) -> list[set[str]]:
        """Return the lower-cased header names of each recorded request."""
        return [set(request.headers) for request in self.recorded]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _tunnel(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

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

    other = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    other.start()
    pipe(client, upstream)
    other.join(30)
    upstream.close()
