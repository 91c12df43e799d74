"""Say what a WebDAV flow asks of its runner: send a request, or wait.

Each operation of the driver is written once, as a generator (a *flow*)
that yields the steps it needs and receives their outcome: a :class:`Call`
is answered with the server's response, or with the stowage error its
request failed with, raised inside the flow; a :class:`Pause` with nothing.
A sync and an async runner drive the same flows
(:mod:`stowage.drivers.webdav.runners`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import field
from typing import Any, TypeVar

from stowage.drivers.base import MiB, Readable, in_thread
from stowage.records import record

__all__ = ["CHUNK", "XML_HEADERS", "Body", "Call", "Flow", "Pause"]

_T = TypeVar("_T")

#: Bytes read at a time from an upload's source, and from a download.
CHUNK = MiB
#: The headers of a request whose ``content`` is XML (PROPFIND, LOCK).
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}


class Body:
    """Read an upload's source in chunks and count the bytes; rewind it to send it again."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.count = 0
        #: Where the stream started, if it can go back there (a spooled file can).
        self.start: int | None = None
        seekable = getattr(stream, "seekable", None)
        if seekable is not None and seekable():
            self.start = int(getattr(stream, "tell")())  # noqa: B009

    def read(self) -> bytes:
        """Return the next chunk of the source (empty at its end)."""
        chunk = self.stream.read(CHUNK)
        self.count += len(chunk)
        return chunk

    def rewind(self) -> None:
        """Go back to the start of the stream, to send it again."""
        assert self.start is not None
        getattr(self.stream, "seek")(self.start)  # noqa: B009
        self.count = 0

    def chunks(self) -> Iterator[bytes]:
        """Yield the source's chunks, for the sync client."""
        while chunk := self.read():
            yield chunk

    async def achunks(self) -> AsyncIterator[bytes]:
        """Yield the source's chunks, each read on a worker thread, for the async client."""
        while chunk := await in_thread(self.read):
            yield chunk


@record(slots=True)
class Call:
    """Send one request; the flow receives the response.

    ``what`` names the operation in error messages. ``content`` is a small
    body sent whole, ``body`` an upload streamed in chunks. A ``download``
    answered 200 or 206 comes with its body unread, for the flow to stream.
    """

    method: str
    url: str
    what: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    body: Body | None = None
    download: bool = False


@record(slots=True)
class Pause:
    """Wait ``seconds`` before the next step."""

    seconds: float


#: A flow: yields steps, receives their outcome, returns the operation's result.
Flow = Generator[Call | Pause, Any, _T]
