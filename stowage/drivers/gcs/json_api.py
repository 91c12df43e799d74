"""GET the JSON API's listing pages on stowage's own kept-alive connections.

``exists()`` is one listing and ``listdir()`` a few: many small requests.
Through google-cloud-storage each costs about a millisecond of client CPU
(``requests``, ``urllib3``, google-auth's session); on a
:class:`~stowage.drivers.http_pool.Pool` with
:mod:`~stowage.drivers.exchange`, a fraction of that. The client library
still makes the credentials, the base URL and everything else; here only
the request is sent, with the credentials' own headers (a token refreshed
when due, the quota project).

Failures are raised as the client library raises them (an API exception
carrying the status and the service's message, or the connection's own
error), so the driver's one error table translates both paths alike.
Where the pool cannot go (an ``https://`` or SOCKS proxy, a client
certificate for mutual TLS) :func:`json_api` returns None and the client
library sends the request.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from stowage.drivers.http_pool import Pool

__all__ = ["JsonApi", "json_api"]


class JsonApi:
    """Send authorized GET requests of the JSON API for one client."""

    def __init__(self, base_url: str, credentials: Any, timeout: float) -> None:
        parts = urlsplit(base_url)
        #: The API's root, ``/storage/v1``, below the base URL's own path.
        self._root = f"{parts.path.rstrip('/')}/storage/v1"
        self._credentials = credentials
        self._auth_request: Any = None
        self._lock = threading.Lock()
        self.pool = Pool(
            parts.scheme,
            parts.netloc,
            verify=_ca_bundle(),
            connect_timeout=timeout,
            timeout=timeout,
            proxy=None,
        )

    def get(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET ``path`` (below ``/storage/v1``) with ``query``; return the JSON answer."""
        from google.api_core import exceptions

        target = f"{self._root}{path}?{urlencode(query)}"
        headers = {
            "Host": self.pool.host,
            "Accept": "application/json",
            "User-Agent": "django-stowage",
        }
        url = f"{self.pool.origin}{target}"
        self._credentials.before_request(self._authorizer(), "GET", url, headers)
        response = self.pool.send("GET", target, headers)
        if response.status >= 300:
            message = _message(response.body)
            raise exceptions.from_http_status(response.status, message)  # type: ignore[no-untyped-call]
        answer: dict[str, Any] = json.loads(response.body)
        return answer

    def close(self) -> None:
        """Close the idle connections."""
        self.pool.close()

    def _authorizer(self) -> Any:
        """Return the transport google-auth refreshes tokens with (made once, when first due)."""
        if self._auth_request is None:
            with self._lock:
                if self._auth_request is None:
                    from google.auth.transport.requests import Request

                    self._auth_request = Request()
        return self._auth_request


def json_api(client: Any, timeout: float) -> JsonApi | None:
    """Return a :class:`JsonApi` for ``client``'s base URL, or None where the pool cannot go."""
    if getattr(client._http, "is_mtls", False):
        return None
    api = JsonApi(client._connection.API_BASE_URL, client._credentials, timeout)
    return api if api.pool.reachable else None


def _ca_bundle() -> str | bool:
    """Return the CA bundle ``requests`` would trust besides the system's roots.

    The client library sends through ``requests``, which trusts certifi's
    bundle or the one ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` names: a
    service it reaches must be reachable here too.
    """
    named = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if named:
        return named
    try:
        import certifi
    except ImportError:
        return True
    return str(certifi.where())


def _message(body: bytes) -> str:
    """Return the message of the service's JSON error, else the start of the body."""
    try:
        error = json.loads(body).get("error", {})
        return str(error.get("message") or error)
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip()
