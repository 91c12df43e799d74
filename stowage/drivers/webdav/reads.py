"""Read a range of a file, and pick the read up where a cut stopped it.

Reads are ranged GETs streamed in chunks; a server that ignores ``Range``
sends the whole file, and the read skips to its start. A body cut
mid-way is asked for again from the byte where it stopped, up to
``max_retries`` times and only while the file keeps its ETag and size;
then the read raises :class:`~stowage.exceptions.IncompleteRead`. Both
runners stream through a :class:`Reading`, so ``get`` and ``aget`` cut,
resume and give up alike.
"""

from __future__ import annotations

import httpx

from stowage.drivers.base import ObjectInfo
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.errors import READ_ERRORS, status_error
from stowage.drivers.webdav.multistatus import parse_etag, parse_http_date
from stowage.drivers.webdav.steps import Call, Flow
from stowage.exceptions import IncompleteRead

__all__ = ["Reading"]


def _range_header(start: int, end: int | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if start or end is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    return headers


class Reading:
    """Stream one ranged read: keep the bytes asked for, count them, resume after a cut.

    ``response`` is the answer whose body streams now (None when there is
    nothing to read); the runner iterates it, hands each chunk to
    :meth:`take`, and after a cut pauses as :meth:`cut` says and runs
    :meth:`resume`.
    """

    def __init__(
        self, url: str, key: str, end: int | None, *, retry: RetryPolicy, root: str
    ) -> None:
        self.url = url
        self.end = end
        self.what = f"reading {key!r}"
        #: The file read; the server's answer replaces this placeholder.
        self.info = ObjectInfo(key=key, size=0)
        self.response: httpx.Response | None = None
        #: Where in the file the next byte taken lies.
        self.position = 0
        # Bytes of the body to skip, then to keep (None: all); nothing before an answer.
        self._skip = 0
        self._keep: int | None = 0
        self._resumes = 0
        self._retry = retry
        self._root = root

    def open(self, start: int) -> Flow[bool]:
        """GET the range from ``start``; False, with nothing to read, if it lies past the end."""
        response = yield self._get(start)
        if response.status_code == 416:
            return False
        self._answered(response, start)
        return True

    def resume(self) -> Flow[None]:
        """GET the rest after a cut, refusing a file that ended or changed meanwhile."""
        first = self.info
        response = yield self._get(self.position)
        if response.status_code == 416:
            raise IncompleteRead(
                f"{self.what}: the object ended at byte {self.position} when resumed."
            )
        self._answered(response, self.position)
        if self.info.etag != first.etag or self.info.size != first.size:
            raise IncompleteRead(f"{self.what}: the object changed while it was read.")

    def take(self, chunk: bytes) -> bytes:
        """Return what the caller asked for of the next ``chunk`` of the body."""
        if self._skip:
            dropped = min(self._skip, len(chunk))
            chunk = chunk[dropped:]
            self._skip -= dropped
        if self._keep is not None:
            chunk = chunk[: self._keep]
            self._keep -= len(chunk)
        self.position += len(chunk)
        return chunk

    @property
    def done(self) -> bool:
        """Tell whether every byte asked for has been taken."""
        return self._keep == 0

    def cut(self, exc: httpx.HTTPError) -> float:
        """Count a body cut by ``exc``: return the pause before resuming, or raise once spent."""
        if self._resumes == self._retry.retries:
            raise READ_ERRORS.convert(exc, self.what, root=self._root) from exc
        self._resumes += 1
        return self._retry.pause(self._resumes - 1)

    def _get(self, start: int) -> Call:
        return Call("GET", self.url, self.what, _range_header(start, self.end), download=True)

    def _answered(self, response: httpx.Response, start: int) -> None:
        """Take over ``response``, a GET of the range from ``start``, and learn the file from it."""
        if response.status_code not in (200, 206):
            raise status_error(response, self.what)
        self.response = response
        headers = response.headers
        content_range = headers.get("content-range", "")
        if response.status_code == 206 and "/" in content_range:
            total = content_range.rpartition("/")[2].strip()
            size = int(total) if total.isdigit() else start + int(headers.get("content-length", 0))
            self._skip = 0
        else:
            # The server ignored Range: the body is the whole file.
            size = int(headers.get("content-length", 0))
            self._skip = start
        self._keep = None if self.end is None else max(0, min(self.end, size) - start)
        self.position = start
        self.info = ObjectInfo(
            key=self.info.key,
            size=size,
            modified=parse_http_date(headers.get("last-modified")),
            etag=parse_etag(headers.get("etag")),
            content_type=headers.get("content-type"),
        )
