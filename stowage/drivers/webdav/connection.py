"""Make the WebDAV driver's httpx clients: credentials, TLS, timeouts, headers.

One ``httpx.Client`` (thread-safe, pooled) serves the sync methods. An
``httpx.AsyncClient`` is bound to the event loop it first ran on and leaks
its sockets if its loop ends first, so each async operation opens and closes
its own (the requests of one operation share its connection; the TLS
context is built once per driver).
"""

from __future__ import annotations

import ssl
import threading
import weakref
from typing import Any

import httpx

from stowage.drivers.webdav.errors import status_error
from stowage.drivers.webdav.options import WebDAVOptions

__all__ = ["Connection"]


class Connection:
    """Hold what the driver's clients share, the sync client, and the digest challenge."""

    def __init__(self, options: WebDAVOptions) -> None:
        self.options = options
        #: The collection's URL, which error messages name.
        self.root = options.url
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._tls: ssl.SSLContext | bool | None = None
        self._auth: httpx.Auth | None = None
        if options.username:
            password = options.password or ""
            if options.auth == "digest":
                self._auth = httpx.DigestAuth(options.username, password)
            else:
                self._auth = httpx.BasicAuth(options.username, password)
        #: Whether a streamed body can be sent once: digest needs a challenge first.
        self.primed = options.auth != "digest"

    def _client_options(self) -> dict[str, Any]:
        if self._tls is None:
            # Built once: loading the CA bundle is the slow part of making a client.
            verify = self.options.verify
            if isinstance(verify, str):
                self._tls = ssl.create_default_context(cafile=verify)
            else:
                self._tls = httpx.create_ssl_context() if verify else False
        return {
            "auth": self._auth,
            "verify": self._tls,
            "timeout": httpx.Timeout(self.options.timeout),
            "headers": self.options.headers,
            "follow_redirects": False,
        }

    @property
    def client(self) -> httpx.Client:
        """Return the shared sync client, created on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(**self._client_options())
                    # Close the pooled sockets when the driver is dropped without close().
                    weakref.finalize(self, self._client.close)
        return self._client

    def async_client(self) -> httpx.AsyncClient:
        """Return a new async client, for one operation: the caller closes it."""
        return httpx.AsyncClient(**self._client_options())

    def prime(self, response: httpx.Response, what: str) -> None:
        """Note that ``response``, to a request without a body, met the digest challenge."""
        if response.status_code == 401:
            raise status_error(response, what)
        self.primed = True

    def close(self) -> None:
        """Close the sync client; a new one is made on next use."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
