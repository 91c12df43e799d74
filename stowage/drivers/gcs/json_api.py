"""Send the JSON API's small requests on kept-alive connections.

Listings, metadata, media by range, uploads of a body in hand, deletes:
``exists()`` is one listing, ``open()`` one ranged read, a small ``save()``
one multipart upload. Through google-cloud-storage each costs most of a
millisecond of client CPU (``requests``, ``urllib3``, google-auth's
session, a ``Blob`` made of every answer); on a :class:`~stowage.drivers.http_pool.Pool` with
:mod:`~stowage.drivers.exchange`, a small fraction of that. The client
library still makes the credentials and the base URL; here only the
request is sent, with the credentials' own headers (a token refreshed when
due, the quota project).

Failures are raised as the client library raises them (an API exception
carrying the status and the service's message, or the connection's own
error), so the driver's one error table translates every path alike.
Where the pool cannot go (an ``https://`` or SOCKS proxy, a client
certificate for mutual TLS) :func:`json_api` sends the same requests
through the client's own authorized session instead.

Media is asked for with ``Accept-Encoding: gzip`` and never decoded: the
service then sends the stored bytes, where without it a gzip-compressed
object would be inflated on the way and its ranges ignored.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from stowage.drivers.exchange import Headers, Payload, Response
from stowage.drivers.http_pool import Pool
from stowage.exceptions import ServiceError

__all__ = ["JsonApi", "SessionApi", "json_api"]


class JsonApi:
    """Send authorized requests of the JSON API for one client, on stowage's own pool."""

    def __init__(self, base_url: str, credentials: Any, timeout: float) -> None:
        self._at(base_url)
        parts = urlsplit(base_url)
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

    def _at(self, base_url: str) -> None:
        """Take the roots of the API's requests below ``base_url``."""
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        #: The API's root, ``/storage/v1``, below the base URL's own path.
        self._root = f"{parts.path.rstrip('/')}/storage/v1"
        #: Where objects' bytes are read: ``/download/storage/v1``.
        self._download_root = f"{parts.path.rstrip('/')}/download/storage/v1"
        #: Where objects are written: ``/upload/storage/v1``.
        self._upload_root = f"{parts.path.rstrip('/')}/upload/storage/v1"

    def get(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET ``path`` (below ``/storage/v1``) with ``query``; return the JSON answer."""
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        answer: dict[str, Any] = json.loads(
            self._send("GET", f"{self._root}{path}?{urlencode(query)}", headers).body
        )
        return answer

    def send_json(
        self, method: str, path: str, query: Mapping[str, str], document: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Send ``document`` by ``method`` (POST, PATCH) to ``path``; return the JSON answer."""
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        target = f"{self._root}{path}?{urlencode(query)}"
        answer: dict[str, Any] = json.loads(
            self._send(method, target, headers, json.dumps(document).encode()).body
        )
        return answer

    def start_upload(
        self,
        path: str,
        query: Mapping[str, str],
        document: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> str:
        """Start a resumable upload of the object ``document`` describes; return its session URI.

        ``path`` is the bucket's (``/b/…``); ``headers`` may tell the body's
        type and size (``X-Upload-Content-Type``, ``X-Upload-Content-Length``)
        and the page origin that may send it (``Origin``).
        """
        sent = {"Content-Type": "application/json", "Accept-Encoding": "identity", **headers}
        target = f"{self._upload_root}{path}/o?{urlencode({'uploadType': 'resumable', **query})}"
        answer = self._send("POST", target, sent, json.dumps(document).encode())
        location = answer.headers.get("Location")
        if not location:
            raise ServiceError("The service started an upload without a session URI (Location).")
        return location

    def media(self, path: str, query: Mapping[str, str], byte_range: str) -> Response:
        """GET the stored bytes of the object at ``path`` (``/b/…/o/…``) in ``byte_range``.

        ``byte_range`` is a ``Range`` header's value (``bytes=0-1023``); the
        answer's body holds the bytes as stored, its headers the object's
        generation and stored encoding.
        """
        headers = {"Range": byte_range, "Accept-Encoding": "gzip"}
        target = f"{self._download_root}{path}?{urlencode({'alt': 'media', **query})}"
        return self._send("GET", target, headers)

    def upload(
        self, path: str, query: Mapping[str, str], body: Payload, content_type: str
    ) -> dict[str, Any]:
        """POST a multipart upload (``body`` of type ``content_type``) below ``path``.

        ``path`` is the bucket's (``/b/…``); return the stored object's resource.
        """
        headers = {"Content-Type": content_type, "Accept-Encoding": "identity"}
        target = f"{self._upload_root}{path}/o?{urlencode({'uploadType': 'multipart', **query})}"
        answer: dict[str, Any] = json.loads(self._send("POST", target, headers, body).body)
        return answer

    def delete(self, path: str, query: Mapping[str, str]) -> None:
        """DELETE the object at ``path`` (``/b/…/o/…``)."""
        target = f"{self._root}{path}?{urlencode(query)}"
        self._send("DELETE", target, {"Accept-Encoding": "identity"})

    def close(self) -> None:
        """Close the idle connections."""
        self.pool.close()

    def _send(
        self, method: str, target: str, headers: dict[str, str], body: Payload | None = None
    ) -> Response:
        """Send ``method`` on ``target``, with the credentials' headers; raise for errors."""
        headers.update({"Host": self.pool.host, "User-Agent": "django-stowage"})
        url = f"{self._origin}{target}"
        self._credentials.before_request(self._authorizer(), method, url, headers)
        return _checked(self.pool.send(method, target, headers, body))

    def _authorizer(self) -> Any:
        """Return the transport google-auth refreshes tokens with (made once, when first due)."""
        if self._auth_request is None:
            with self._lock:
                if self._auth_request is None:
                    from google.auth.transport.requests import Request

                    self._auth_request = Request()
        return self._auth_request


class SessionApi(JsonApi):
    """Send the same requests through the client library's authorized session.

    For what the pool cannot reach: a proxy it does not speak, a client
    certificate. The session adds the credentials' headers itself.
    """

    def __init__(self, base_url: str, session: Any, timeout: float) -> None:
        self._at(base_url)
        self._session = session
        self._timeout = timeout

    def close(self) -> None:
        """Nothing to close: the session is the client's."""

    def _send(
        self, method: str, target: str, headers: dict[str, str], body: Payload | None = None
    ) -> Response:
        url = f"{self._origin}{target}"
        data = b"".join(body) if isinstance(body, tuple) else body
        answer = self._session.request(
            method, url, data=data, headers=headers, timeout=self._timeout, stream=True
        )
        try:
            # Every request names its Accept-Encoding: the body is read as sent.
            received: bytes = answer.raw.read(decode_content=False)
        finally:
            answer.close()
        pairs = list(answer.headers.items())
        return _checked(Response(answer.status_code, Headers(pairs), received, False))


def json_api(client: Any, timeout: float) -> JsonApi:
    """Return the sender of ``client``'s requests: stowage's pool where it can go, else theirs."""
    base_url = client._connection.API_BASE_URL
    if not getattr(client._http, "is_mtls", False):
        api = JsonApi(base_url, client._credentials, timeout)
        if api.pool.reachable:
            return api
    return SessionApi(base_url, client._http, timeout)


def _checked(response: Response) -> Response:
    """Return ``response``, or raise the client library's exception for its error status."""
    if response.status >= 300:
        from google.api_core import exceptions

        raise exceptions.from_http_status(response.status, _message(response.body))  # type: ignore[no-untyped-call]
    return response


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
