"""Send the JSON API's requests on kept-alive connections.

Listings, metadata, media by range, uploads, deletes: ``exists()`` is one
listing, ``open()`` one ranged read, a small ``save()`` one multipart
upload, a large one a resumable session. Through google-cloud-storage each
cost most of a millisecond of client CPU (``requests``, ``urllib3``,
google-auth's session, a ``Blob`` made of every answer); on a
:class:`~stowage.drivers.http_pool.Pool` with
:mod:`~stowage.drivers.exchange`, a small fraction of that. Each request
carries the credentials' own headers (a token refreshed when due, the
quota project).

An error answer is raised as :class:`ApiError`, carrying the status and
the service's message, for the driver's one error table to translate.
Where the pool cannot go (an ``https://`` or SOCKS proxy, a client
certificate for mutual TLS) :class:`SessionApi` sends the same requests
through google-auth's authorized session instead.

Media is asked for with ``Accept-Encoding: gzip`` and never decoded: the
service then sends the stored bytes, where without it a gzip-compressed
object would be inflated on the way and its ranges ignored.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from stowage.drivers.exchange import BodyStream, Headers, Payload, Response
from stowage.drivers.http_pool import Pool
from stowage.exceptions import ServiceError

__all__ = [
    "DEFAULT_ENDPOINT",
    "INCOMPLETE",
    "ApiError",
    "JsonApi",
    "Pools",
    "SessionApi",
    "ca_bundle",
]

#: The service's own base URL, for the JSON API and for unsigned object URLs.
DEFAULT_ENDPOINT: Final = "https://storage.googleapis.com"
#: The status of a resumable session's answer that wants more bytes ("Resume Incomplete").
INCOMPLETE: Final = 308


class ApiError(Exception):
    """An error answer of the JSON API: its HTTP status and the service's message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        #: The answer's HTTP status.
        self.code = code
        #: The service's message, or the start of the answer's body.
        self.message = message


class Pools:
    """Pools by origin, made at first use, trusting the CA bundle ``requests`` trusts.

    One set per sender: its own origin, an upload session's the service
    placed elsewhere, and google-auth's (the token endpoint, the metadata
    server). Closed together.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()

    def get(self, scheme: str, host: str) -> Pool:
        """Return the pool of ``scheme://host``."""
        origin = f"{scheme}://{host}"
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                timeout = self._timeout
                pool = self._pools[origin] = Pool(
                    scheme,
                    host,
                    verify=ca_bundle(),
                    connect_timeout=timeout,
                    timeout=timeout,
                    proxy=None,
                )
            return pool

    def close(self) -> None:
        """Close every pool's idle connections."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()


class JsonApi:
    """Send authorized requests of the JSON API, on stowage's own pools."""

    def __init__(self, base_url: str, credentials: Any, pools: Pools, transport: Any) -> None:
        self._at(base_url)
        parts = urlsplit(base_url)
        self._credentials = credentials
        #: What google-auth sends its own requests with (token refreshes, signBlob).
        self.transport = transport
        self._pools = pools
        self.pool = pools.get(parts.scheme, parts.netloc)

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

    def resume(self, session: str, body: Payload, content_range: str) -> Response:
        """PUT ``body`` to the resumable ``session`` (its URI) as ``content_range`` of the object.

        The answer is the stored object (200, 201) or, for a session that
        wants more, :data:`INCOMPLETE` with the bytes it holds in ``Range``.
        """
        headers = {"Content-Range": content_range, "Accept-Encoding": "identity"}
        return self._send("PUT", session, headers, body, also=(INCOMPLETE,))

    def close(self) -> None:
        """Close the idle connections."""
        self._pools.close()

    def _send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Payload | None = None,
        *,
        also: tuple[int, ...] = (),
    ) -> Response:
        """Send ``method`` on ``target`` (a path, or a URL the service gave); raise for errors.

        The credentials add their headers; statuses in ``also`` are answers, not errors.
        """
        pool = self.pool
        if target.startswith("/"):
            url = f"{self._origin}{target}"
        else:
            url = target
            parts = urlsplit(url)
            pool = self._pools.get(parts.scheme, parts.netloc)
            target = url[len(pool.origin) :] or "/"
        headers.update({"Host": pool.host, "User-Agent": "django-stowage"})
        self._credentials.before_request(self.transport, method, url, headers)
        return _checked(pool.send(method, target, headers, body), also)


class SessionApi(JsonApi):
    """Send the same requests through google-auth's authorized session (``requests``).

    For what the pool cannot reach: a proxy it does not speak, a client
    certificate. The session adds the credentials' headers itself.
    """

    def __init__(self, base_url: str, session: Any, timeout: float) -> None:
        from google.auth.transport.requests import Request

        self._at(base_url)
        self._session = session
        self._timeout = timeout
        self.transport = Request(session)

    def close(self) -> None:
        """Nothing to close: the session is the client's."""

    def _send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Payload | None = None,
        *,
        also: tuple[int, ...] = (),
    ) -> Response:
        url = f"{self._origin}{target}" if target.startswith("/") else target
        data: bytes | BodyStream | None
        if isinstance(body, BodyStream):
            # A file object to requests: read as it is sent, its length given.
            body.rewind()
            headers["Content-Length"] = str(body.length)
            data = body
        else:
            data = None if body is None else b"".join(body if isinstance(body, tuple) else (body,))
        answer = self._session.request(
            method, url, data=data, headers=headers, timeout=self._timeout, stream=True
        )
        try:
            # Every request names its Accept-Encoding: the body is read as sent.
            received: bytes = answer.raw.read(decode_content=False)
        finally:
            answer.close()
        pairs = list(answer.headers.items())
        return _checked(Response(answer.status_code, Headers(pairs), received, False), also)


def _checked(response: Response, also: tuple[int, ...] = ()) -> Response:
    """Return ``response``, or raise :class:`ApiError` for its error status."""
    if response.status >= 300 and response.status not in also:
        raise ApiError(response.status, _message(response.body))
    return response


def ca_bundle() -> str | bool:
    """Return the CA bundle ``requests`` would trust besides the system's roots.

    google-auth's session sends through ``requests``, which trusts certifi's
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
