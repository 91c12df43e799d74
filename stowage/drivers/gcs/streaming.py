"""Send a large body of known size in one streamed request of a resumable session.

The client's resumable upload sends ``blob_chunk_size`` bytes per request,
each read into memory first: a 64 MiB body is eight requests. When the size
is known and the stream can seek, stowage starts the resumable session
itself and sends the whole body in one ``PUT``, read from the stream a block
at a time as the socket takes it, so memory stays bounded without cutting
the body into requests. A failed try starts again from the body's start in
a new session, under the retry policy. (The resumable protocol would let a
try ask the session how much it holds and send the rest; fake-gcs-server
commits an empty object when asked, so that path could not be tested.)
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any, TypeGuard

from stowage.drivers.base import Readable
from stowage.drivers.gcs.connection import Connection
from stowage.exceptions import ServiceError

__all__ = ["can_stream", "put_streamed"]

#: What each read of the caller's stream asks for while the body is sent.
_BLOCK = 256 * 1024


def can_stream(stream: Readable) -> TypeGuard[IO[bytes]]:
    """Tell whether ``stream`` can be sent in one request and re-sent from any offset."""
    seekable = getattr(stream, "seekable", None)
    try:
        return callable(seekable) and bool(seekable()) and callable(getattr(stream, "tell", None))
    except (OSError, ValueError):
        return False


class _Window(io.RawIOBase):
    """``size`` bytes of a stream from where it stands, for requests to send.

    A failure of the caller's stream, or its end before ``size`` bytes, is
    kept in :attr:`error`: the HTTP client would report it as a broken
    connection, so the upload raises it as it is instead.
    """

    def __init__(self, stream: Any, size: int) -> None:
        self._stream = stream
        self._size = size
        self._left = size
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        # requests takes the length to send as len() less tell().
        return self._size - self._left

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        want = self._left if size < 0 else min(size, self._left, _BLOCK)
        try:
            data: bytes = self._stream.read(want) if want else b""
            if want and not data:
                raise ValueError(
                    f"the stream ended after {self._size - self._left} of the {self._size} "
                    "bytes it was saved with"
                )
        except BaseException as exc:
            self.error = exc
            raise
        self._left -= len(data)
        return data


def put_streamed(
    conn: Connection,
    what: str,
    fields: dict[str, Any],
    stream: Any,
    size: int,
    *,
    predefined_acl: str | None,
    if_absent: bool,
    landed: Callable[[], dict[str, Any] | None],
) -> dict[str, Any]:
    """Upload ``size`` bytes of ``stream`` as the object ``fields`` describe; return its resource.

    Each try starts a session and sends the body from where the stream stood.
    A create whose retry finds the name taken asks ``landed`` whether the
    object there is this body, stored by a try whose answer was lost.
    """
    timeout = conn.options.timeout
    start = stream.tell()
    path, query = conn.path_of()
    if if_absent:
        query["ifGenerationMatch"] = "0"
    if predefined_acl:
        query["predefinedAcl"] = predefined_acl
    content_type = fields.get("contentType")
    announced = {"X-Upload-Content-Length": str(size)}
    if content_type:
        announced["X-Upload-Content-Type"] = content_type

    def send() -> dict[str, Any]:
        session = conn.json.start_upload(path, query, fields, announced)
        stream.seek(start)
        headers = {"Content-Length": str(size)}
        if content_type:
            headers["Content-Type"] = content_type
        window = _Window(stream, size)
        try:
            response = conn.client._http.put(session, data=window, headers=headers, timeout=timeout)
        except Exception:
            if window.error is not None:
                raise window.error from None
            raise
        if response.status_code not in (200, 201):
            from google.api_core import exceptions

            raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
        resource: dict[str, Any] = response.json()
        if int(resource.get("size", -1)) != size:
            raise ServiceError(f"{what}: the service stored {resource.get('size')} of {size} bytes")
        return resource

    if if_absent:
        return conn.create(what, send, landed=landed, reading=False)
    return conn.call(what, send, reading=False)
