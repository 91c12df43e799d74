"""Kept-alive HTTP connections to one service, for the drivers' own REST calls.

A :class:`Pool` sends one request at a time per connection: each thread
sending holds one, and a finished exchange returns it for reuse (at most
:data:`POOL_SIZE` idle). ``http.client`` opens connections (TLS, proxy
tunnels, timeouts); :mod:`~stowage.drivers.exchange` writes each request and
reads its answer. A request on a kept-alive connection the server had
already closed is sent again once, on a new connection.

It honours ``verify`` (False, or a CA bundle trusted besides the public
roots), a connect and a read timeout, and a plain ``http://`` proxy
(given, else ``HTTPS_PROXY`` / ``HTTP_PROXY`` and ``NO_PROXY``), tunnelling
through it with ``CONNECT`` to an ``https`` origin. It cannot go through an
``https://`` or SOCKS proxy: :attr:`Pool.reachable` says so, and a driver
then keeps to its client library.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import urllib.request
from urllib.parse import unquote, urlsplit

from stowage.drivers.exchange import Payload, Response, exchange
from stowage.drivers.options import tls_context

__all__ = ["POOL_SIZE", "Pool", "UntrustedCertificate", "environment_proxy"]

#: Idle connections kept for reuse; more threads than this open their own.
POOL_SIZE = 16
#: Failures that, on a reused connection, mean the server had closed it while idle.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class UntrustedCertificate(Exception):
    """The service's TLS certificate was refused.

    ``ssl`` reports it as a ``ValueError`` too, which error translation
    passes on as a programming error: this one is translated as the service's.
    """


def environment_proxy(scheme: str, host: str) -> str | None:
    """Return the proxy the environment names for ``scheme``, unless NO_PROXY exempts ``host``."""
    found = urllib.request.getproxies_environment().get(scheme)
    if not found or urllib.request.proxy_bypass(host):
        return None
    return found if "://" in found else f"http://{found}"


class Pool:
    """Send requests to one origin (``scheme://host[:port]``) on kept-alive connections."""

    def __init__(
        self,
        scheme: str,
        host: str,
        *,
        verify: bool | str,
        connect_timeout: float,
        timeout: float,
        proxy: str | None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self._verify = verify
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        #: The proxy requests go through: the one given, else the environment's.
        self.proxy = proxy or environment_proxy(scheme, host)
        self._context: ssl.SSLContext | None = None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        """Return ``scheme://host``."""
        return f"{self.scheme}://{self.host}"

    @property
    def proxy_scheme(self) -> str:
        """Return the scheme of the proxy requests go through ("" without one)."""
        return urlsplit(self.proxy or "").scheme

    @property
    def reachable(self) -> bool:
        """Tell whether the origin can be reached: directly, or by an http:// proxy."""
        return self.proxy is None or self.proxy_scheme == "http"

    def send(
        self, method: str, target: str, headers: dict[str, str], body: Payload | None = None
    ) -> Response:
        """Send one request for ``target`` (path and query) and return its answer, any status."""
        if self._forwarded:
            # A plain-HTTP proxy takes the whole URL in the request line.
            target = self.origin + target
            headers.update(self._proxy_authorization())
        connection, reused = self._checkout()
        try:
            try:
                response = _exchange(connection, method, target, body, headers)
            except _STALE:
                if not reused:
                    raise
                connection.close()
                connection = self._connect()
                response = _exchange(connection, method, target, body, headers)
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._checkin(connection)
        return response

    def close(self) -> None:
        """Close the idle connections; a later request opens new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- connections --------------------------------------------------------------------------

    @property
    def _forwarded(self) -> bool:
        """Tell whether requests go to an HTTP proxy in full (http origin, http proxy)."""
        return self.proxy is not None and self.scheme == "http"

    def _proxy_authorization(self) -> dict[str, str]:
        parts = urlsplit(self.proxy or "")
        if not parts.username:
            return {}
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        return {"Proxy-Authorization": f"Basic {base64.b64encode(login.encode()).decode()}"}

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        """Open a connection: to the origin, or through the proxy."""
        timeout = self._connect_timeout
        proxy = urlsplit(self.proxy).netloc.rpartition("@")[2] if self.proxy else None
        connection: http.client.HTTPConnection
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(
                proxy or self.host, timeout=timeout, context=self._tls()
            )
            if proxy:
                connection.set_tunnel(self.host, headers=self._proxy_authorization())
        else:
            connection = http.client.HTTPConnection(proxy or self.host, timeout=timeout)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            raise UntrustedCertificate(str(exc)) from exc
        except BaseException:
            connection.close()
            raise
        assert connection.sock is not None
        connection.sock.settimeout(self._timeout)
        # A request whose body goes in a second send must not wait for an ACK (Nagle).
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = tls_context(self._verify) or ssl.create_default_context()
        return self._context


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    body: Payload | None,
    headers: dict[str, str],
) -> Response:
    assert connection.sock is not None
    return exchange(connection.sock, method, target, headers, body)
