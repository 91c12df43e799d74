"""Read a range of a file with ``REST`` and ``RETR``, on a connection held until done.

``MLST`` (or ``SIZE``) gives the size, then ``REST`` and ``RETR`` send the
range; a range that stops before the end of the file closes the data
connection early and reads the server's abort reply. A download holds its
control connection until it is closed or read to the end, so close what you
open.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from stowage.drivers.base import ObjectInfo
from stowage.drivers.ftp.connection import (
    RECV,
    Client,
    ConnectionPool,
    abort_data,
    bulk_transfer,
    finish_data,
)
from stowage.drivers.ftp.lookups import file_info

__all__ = ["Retrieval", "open_transfer"]


def open_transfer(
    client: Client, path: str, key: str, start: int, end: int | None
) -> tuple[ObjectInfo, socket.socket | None, int]:
    """Describe the file and start its RETR at ``start``; no transfer for an empty range.

    Return the file's description, the data connection (None when there is
    nothing to send) and the offset where the range stops.
    """
    info = file_info(client, path, key, modified=False)
    stop = info.size if end is None else min(end, info.size)
    if start >= stop:
        return info, None, stop
    conn = bulk_transfer(client, f"RETR {path}", start or None)
    return info, conn, stop


class Retrieval:
    """Iterate the bytes of one RETR and give its connection back when done."""

    def __init__(
        self,
        pool: ConnectionPool,
        client: Client,
        conn: socket.socket,
        what: str,
        length: int,
        *,
        to_end: bool,
    ) -> None:
        self._pool = pool
        self._client: Client | None = client
        self._conn = conn
        self._what = what
        self._remaining = length
        self._to_end = to_end

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        client = self._client
        if client is None:
            raise StopIteration
        if self._remaining <= 0 and not self._to_end:
            self.close()
            raise StopIteration
        want = RECV if self._to_end else min(RECV, self._remaining)
        broken = False
        try:
            with self._pool.errors(self._what):
                try:
                    data = self._conn.recv(want)
                except ConnectionResetError:
                    # The data connection broke mid-transfer: end this stream
                    # here; the reader sees the bytes missing and resumes (REST).
                    data, broken = b"", True
                if not data and not broken:
                    self._client = None
                    finish_data(self._conn)
                    client.voidresp()
                    self._pool.release(client)
        except BaseException:
            broken = True
            raise
        finally:
            if broken:
                self._client = None
                self._conn.close()
                self._pool.discard(client)
        if not data:
            raise StopIteration
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        """Abort the transfer if it is still running and release the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            abort_data(client, self._conn)
        except BaseException:
            self._pool.discard(client)
            return
        self._pool.release(client)
