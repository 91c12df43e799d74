"""Send a large body in a resumable session: streamed in one request, or chunk by chunk.

When the size is known and the stream can seek, the whole body goes in one
``PUT``, read from the stream a block at a time as the socket takes it, so
memory stays bounded without cutting the body into requests. A failed try
starts again from the body's start in a new session, under the retry
policy. (The resumable protocol would let a try ask the session how much it
holds and send the rest; fake-gcs-server commits an empty object when
asked, so that path could not be tested.)

Otherwise (a stream of unknown length, read once) the body goes
``blob_chunk_size`` bytes per request, each chunk in hand until the session
says it holds it: a chunk whose request fails is sent again, and a session
that holds only part of one is sent the rest. A stream whose length is a
multiple of the chunk size ends with an empty request that names the total.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import IO, Any, Final, TypeGuard

from stowage.drivers.base import Readable
from stowage.drivers.exchange import BodyStream, Response
from stowage.drivers.gcs.connection import Connection
from stowage.drivers.gcs.json_api import INCOMPLETE
from stowage.exceptions import ServiceError

__all__ = ["can_stream", "put_chunked", "put_streamed"]

#: A session's ``Range`` header: the bytes it holds, from the first.
_HELD: Final = re.compile(r"bytes=0-(\d+)")


def can_stream(stream: Readable) -> TypeGuard[IO[bytes]]:
    """Tell whether ``stream`` can be sent in one request and re-sent from any offset."""
    seekable = getattr(stream, "seekable", None)
    try:
        return callable(seekable) and bool(seekable()) and callable(getattr(stream, "tell", None))
    except (OSError, ValueError):
        return False


def _session_query(
    conn: Connection, predefined_acl: str | None, if_absent: bool
) -> tuple[str, dict[str, str]]:
    path, query = conn.path_of()
    if if_absent:
        query["ifGenerationMatch"] = "0"
    if predefined_acl:
        query["predefinedAcl"] = predefined_acl
    return path, query


def put_streamed(
    conn: Connection,
    what: str,
    fields: dict[str, Any],
    stream: IO[bytes],
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
    path, query = _session_query(conn, predefined_acl, if_absent)
    announced = {"X-Upload-Content-Length": str(size)}
    if content_type := fields.get("contentType"):
        announced["X-Upload-Content-Type"] = content_type
    body = BodyStream(stream, size)

    def send() -> dict[str, Any]:
        session = conn.json.start_upload(path, query, fields, announced)
        try:
            answer = conn.json.resume(session, body, f"bytes 0-{size - 1}/{size}")
        except Exception:
            if body.error is not None:
                raise body.error from None
            raise
        resource = _finished(what, answer, size)
        if int(resource.get("size", -1)) != size:
            raise ServiceError(f"{what}: the service stored {resource.get('size')} of {size} bytes")
        return resource

    if if_absent:
        return conn.create(what, send, landed=landed, reading=False)
    return conn.call(what, send, reading=False)


def put_chunked(
    conn: Connection,
    what: str,
    fields: dict[str, Any],
    stream: Readable,
    chunk: int,
    *,
    predefined_acl: str | None,
    if_absent: bool,
) -> dict[str, Any]:
    """Upload ``stream`` to its end, ``chunk`` bytes per request; return the object's resource.

    ``stream.read(n)`` must return ``n`` bytes unless the stream ended
    (:class:`~stowage.drivers.gcs.uploads.UploadSource` does).
    """
    path, query = _session_query(conn, predefined_acl, if_absent)
    announced: Mapping[str, str] = {}
    if content_type := fields.get("contentType"):
        announced = {"X-Upload-Content-Type": content_type}
    session = conn.call(
        what, lambda: conn.json.start_upload(path, query, fields, announced), reading=False
    )
    offset = 0
    while True:
        data = memoryview(stream.read(chunk))
        end = offset + len(data)
        last = len(data) < chunk
        while True:
            answer = _send_chunk(
                conn, what, session, data, offset, end if last else None, if_absent
            )
            if answer.status != INCOMPLETE:
                if not last:
                    raise ServiceError(f"{what}: the service ended the upload at byte {offset}")
                return _finished(what, answer, end)
            held = _held(answer)
            if held == end and not last:
                break
            if not offset <= held < end:
                raise ServiceError(
                    f"{what}: the session holds {held} bytes where {offset} to {end} were sent"
                )
            data, offset = data[held - offset :], held
        offset = end


def _send_chunk(
    conn: Connection,
    what: str,
    session: str,
    data: memoryview,
    offset: int,
    total: int | None,
    if_absent: bool,
) -> Response:
    """Send ``data``, the bytes from ``offset`` (of ``total``, when known), under the policy."""
    size = "*" if total is None else str(total)
    span = f"bytes {offset}-{offset + len(data) - 1}/{size}" if len(data) else f"bytes */{size}"

    def send() -> Response:
        return conn.json.resume(session, data, span)

    if if_absent and total is not None:
        # The request that ends the session is the one a taken name refuses.
        return conn.create(what, send, landed=lambda: None, reading=False)
    return conn.call(what, send, reading=False)


def _held(answer: Response) -> int:
    """Return how many bytes an unfinished session holds, from its ``Range`` header."""
    found = _HELD.fullmatch(answer.headers.get("Range", "").strip())
    return int(found.group(1)) + 1 if found else 0


def _finished(what: str, answer: Response, size: int) -> dict[str, Any]:
    """Return the stored object's resource from the answer that ended a session."""
    if answer.status == INCOMPLETE:
        raise ServiceError(f"{what}: the service holds {_held(answer)} of the {size} bytes sent")
    resource: dict[str, Any] = json.loads(answer.body)
    return resource
