"""Send one HTTP/1.1 request on an open socket and read its answer.

stowage's own REST calls (S3's :mod:`~stowage.drivers.s3.rest`, GCS's
listings) are many and small: ``exists()`` is one listing. ``http.client``
builds a request header by header and parses every answer's headers with
the ``email`` package, which costs several times the client CPU of the
exchange itself. Here a request is written in one piece and the answer read
straight from the socket, in a buffer. ``http.client`` still opens the
connections (TLS, proxy tunnels, timeouts); its exceptions are raised for
the same failures, so the error tables that translate them are unchanged.

What is supported is what the services answer: a body by ``Content-Length``,
``chunked``, or up to the close of the connection; interim 1xx answers
skipped; no body for HEAD, 204 and 304.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
from collections.abc import Iterator, Mapping
from typing import IO

from stowage.records import record

__all__ = ["Body", "BodyStream", "Headers", "Payload", "Response", "exchange"]

#: A request body: bytes, or a view of a part's buffer (sent without a copy).
Body = bytes | bytearray | memoryview


class BodyStream(io.RawIOBase):
    """A body read from a seekable stream while it is sent: ``length`` bytes from where it stood.

    Each send starts again from there (:meth:`rewind`), so a request sent
    again on a fresh connection sends the same bytes. A failure of the
    caller's stream, or its end before ``length`` bytes, is kept in
    :attr:`error`: the HTTP client reports it as a broken request, and the
    caller raises it as it is instead. It is also a file object, for HTTP
    clients that read one (``len()`` less ``tell()`` is what is left).
    """

    #: What each read of the stream asks for at most.
    block = 256 * 1024

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self._stream = stream
        self._start = stream.tell()
        self.length = length
        self._left = length
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return self.length

    def tell(self) -> int:
        return self.length - self._left

    def readable(self) -> bool:
        return True

    def rewind(self) -> None:
        """Go back to the body's first byte."""
        self._stream.seek(self._start)
        self._left = self.length

    def read(self, size: int = -1, /) -> bytes:
        """Return the next bytes of the body, at most ``block``; b"" at its end."""
        want = min(self._left if size < 0 else size, self._left, self.block)
        try:
            data: bytes = self._stream.read(want) if want else b""
            if want and not data:
                raise ValueError(
                    f"the stream ended after {self.length - self._left} of the {self.length} "
                    "bytes it was saved with"
                )
        except BaseException as exc:
            self.error = exc
            raise
        self._left -= len(data)
        return data


#: What a request sends: a body, pieces sent one after another (framed, not joined),
#: or a stream read as it is sent.
Payload = Body | tuple[Body, ...] | BodyStream

#: Bodies up to this size go out in the same send as the headers.
_JOINED = 64 * 1024
#: The most header bytes an answer may carry, as http.client allows (100 lines of 64 KiB).
_MAX_HEAD = 100 * 65536
#: Characters that would end a header early: refused, as http.client refuses them.
_UNSAFE = re.compile(r"[\r\n\0]")


class Headers(Mapping[str, str]):
    """An answer's headers, looked up whatever the case of the name."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._names = {name.lower(): name for name, _ in pairs}
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            known = self._values.get(key)
            self._values[key] = value if known is None else f"{known}, {value}"

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@record
class Response:
    """One answer: its status, headers and body, and whether the connection must close."""

    status: int
    headers: Headers
    body: bytes
    will_close: bool


def exchange(
    sock: socket.socket, method: str, target: str, headers: Mapping[str, str], body: Payload | None
) -> Response:
    """Send ``method`` on ``target`` with ``headers`` and ``body``; return the answer.

    ``Content-Length`` is added for a body (and for an empty POST or PUT),
    ``Accept-Encoding: identity`` as http.client adds it unless ``headers``
    name an ``Accept-Encoding`` (whose answer is then read as sent, never
    decoded). A header name or value holding a line break is refused
    (ValueError).
    """
    lines = [f"{method} {target} HTTP/1.1"]
    encoding = False
    for name, value in headers.items():
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise ValueError(f"Invalid header {name!r}: a line break or NUL in its name or value")
        lines.append(f"{name}: {value}")
        encoding = encoding or name.lower() == "accept-encoding"
    if not encoding:
        lines.append("Accept-Encoding: identity")
    if isinstance(body, BodyStream):
        body.rewind()
        lines.append(f"Content-Length: {body.length}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while block := body.read():
            sock.sendall(block)
        return _Reader(sock).answer(method)
    pieces = () if body is None else body if isinstance(body, tuple) else (body,)
    size = sum(memoryview(piece).nbytes for piece in pieces)
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {size}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if size <= _JOINED:
        sock.sendall(b"".join((head, *pieces)))
    else:
        sock.sendall(head)
        for piece in pieces:
            sock.sendall(piece)
    return _Reader(sock).answer(method)


class _Reader:
    """Read one answer from ``sock``, through a buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._closed = False

    def answer(self, method: str) -> Response:
        while True:
            version, status, headers = self._head()
            if not 100 <= status < 200:
                break  # interim answers (100 Continue) carry no body
        tokens = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
        will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            body = self._chunked()
        elif (length := headers.get("Content-Length")) is not None:
            try:
                body = self._exactly(int(length))
            except ValueError:
                raise http.client.HTTPException(f"Invalid Content-Length {length!r}") from None
        else:
            body, will_close = self._to_close(), True
        # Anything beyond the answer would be read as the next one's start.
        return Response(status, headers, body, will_close or bool(self._buffer))

    def _head(self) -> tuple[str, int, Headers]:
        end = self._find(b"\r\n\r\n", limit=_MAX_HEAD)
        block = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, _, rest = block.partition("\r\n")
        version, _, remainder = status_line.partition(" ")
        code = remainder[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise http.client.BadStatusLine(status_line)
        pairs = []
        for line in rest.split("\r\n") if rest else ():
            name, colon, value = line.partition(":")
            if colon:
                pairs.append((name.strip(), value.strip()))
        return version, int(code), Headers(pairs)

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            end = self._find(b"\r\n", limit=65536)
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            del self._buffer[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise http.client.HTTPException(f"Invalid chunk size {size_text!r}") from None
            if size == 0:
                # Trailers, if any, up to the empty line that ends them.
                while (end := self._find(b"\r\n", limit=65536)) != 0:
                    del self._buffer[: end + 2]
                del self._buffer[:2]
                return bytes(body)
            body += self._exactly(size + 2)[:size]

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise http.client.IncompleteRead(bytes(self._buffer), size - len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _to_close(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _find(self, mark: bytes, *, limit: int) -> int:
        """Return where ``mark`` starts in the buffer, reading until it does."""
        start = 0
        while (found := self._buffer.find(mark, start)) < 0:
            if len(self._buffer) > limit:
                raise http.client.HTTPException("The answer's header is too long")
            start = max(0, len(self._buffer) - len(mark) + 1)
            if not self._fill():
                if not self._buffer:
                    raise http.client.RemoteDisconnected(
                        "Remote end closed connection without response"
                    )
                raise http.client.IncompleteRead(bytes(self._buffer))
        return found

    def _fill(self) -> bool:
        """Read what the socket has (waiting for it); False at the connection's end."""
        chunk = self._sock.recv(262144)
        self._buffer += chunk
        return bool(chunk)
