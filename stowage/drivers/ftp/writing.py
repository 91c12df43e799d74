"""Upload through a hidden temporary name, checked and then renamed into place.

The bytes go to a hidden temporary name in the target directory
(``.stowage-tmp-…``, never listed), streamed from the source in chunks, and
are then renamed into place with ``RNFR``/``RNTO``: a reader never sees a
partial file. FTP ends an upload by closing its data connection, so a
connection cut mid-way can look complete to the server: the size stored
(``MLST`` or ``SIZE``) is compared with the bytes sent before the rename.
An upload that fails leaves nothing under its name (the temporary file is
deleted; if even that fails it stays hidden). Missing parent directories are
created with ``MKD`` when the server says the directory is missing. A server
that refuses to rename over an existing file gets the old file deleted first,
which leaves a moment with no file at all.

No atomic create: FTP has no "store only if absent" command, so the driver
does not declare ``ATOMIC_CREATE``. The adapter checks a name with
``exists()`` and then calls ``put(if_absent=True)``, which checks again
(``MLST`` or ``SIZE``) just before the rename and raises
:class:`~stowage.exceptions.AlreadyExists` if the name was taken meanwhile,
so the adapter moves on to the next name. Two writers can still pass that
last check together in the one round trip before the rename; the last rename
then wins (50 threads saving one name: 37 to 49 distinct files survived in our runs).

An upload may be tried again on a new connection until it has read from its
stream (:meth:`Source.untouched`).
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath

from stowage.drivers.base import ObjectInfo, Readable
from stowage.drivers.ftp.connection import Client, abort_data, bulk_transfer, finish_data
from stowage.drivers.ftp.lookups import stat
from stowage.drivers.ftp.replies import MISSING, UNKNOWN_COMMAND, reply_code
from stowage.exceptions import AlreadyExists, ServiceError, StowageError

__all__ = ["Source", "SourceFailed", "remove_quietly", "upload"]

#: Bytes read from the source and sent at a time.
_CHUNK = 256 * 1024


class SourceFailed(StowageError):
    """Carry an exception raised by the content being uploaded, to re-raise it as it is."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class Source:
    """Read the upload's stream, noting whether it was touched and wrapping its errors."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.touched = False

    def read(self, size: int) -> bytes:
        """Return the next chunk of the stream."""
        self.touched = True
        try:
            return self._stream.read(size)
        except Exception as exc:
            raise SourceFailed(exc) from exc

    def untouched(self) -> bool:
        """Tell whether nothing was read yet (the upload may be retried)."""
        return not self.touched


def _make_dirs(client: Client, directory: str) -> None:
    """Create ``directory`` and its parents, tolerating those that exist."""
    current = ""
    for part in directory.strip("/").split("/"):
        current = f"{current}/{part}" if current or directory.startswith("/") else part
        with contextlib.suppress(ftplib.error_perm):
            client.mkd(current)


def _store(client: Client, temp: str, source: Source) -> int:
    """Upload ``source`` to ``temp`` with STOR; on failure leave no ``temp`` behind."""
    try:
        conn = bulk_transfer(client, f"STOR {temp}")
    except ftplib.error_perm as exc:
        if reply_code(exc) not in MISSING:
            raise
        _make_dirs(client, posixpath.dirname(temp))
        conn = bulk_transfer(client, f"STOR {temp}")
    sent = 0
    try:
        try:
            while chunk := source.read(_CHUNK):
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            # The server closed the data connection (a full disk, say):
            # its reply on the control connection says why.
            conn.close()
            client.voidresp()
            raise
        except BaseException:
            abort_data(client, conn)
            raise
        finish_data(conn)
        client.voidresp()
        # FTP marks the end of an upload by closing the data connection, so
        # a connection cut mid-way looks complete to the server: compare.
        stored = _stored_size(client, temp)
        if stored is not None and stored != sent:
            raise ServiceError(
                f"the server stored {stored} of the {sent} bytes sent; the upload was cut."
            )
    except BaseException:
        remove_quietly(client, temp)
        raise
    return sent


def _stored_size(client: Client, path: str) -> int | None:
    """Return the size of the file at ``path``, or None if the server cannot tell."""
    try:
        entry = stat(client, path)
    except ftplib.error_perm as exc:
        if reply_code(exc) in UNKNOWN_COMMAND:
            return None
        raise
    if entry is None:
        raise ftplib.error_perm(f"550 {path!r} vanished after its upload.")
    return None if entry.is_dir else entry.size


def remove_quietly(client: Client, path: str) -> None:
    """Delete the file at ``path`` if the connection allows; a failure is only noted."""
    if client.broken:
        return
    try:
        client.delete(path)
    except ftplib.error_perm:
        pass
    except BaseException:
        client.broken = True


def _rename(client: Client, temp: str, path: str, key: str, *, if_absent: bool) -> None:
    try:
        client.rename(temp, path)
    except ftplib.error_perm:
        # Some servers (Windows ones) refuse to rename over a file.
        target = stat(client, path)
        if target is None or target.is_dir:
            raise
        if if_absent:
            raise AlreadyExists(f"{key!r} already exists.") from None
        client.delete(path)
        client.rename(temp, path)


def upload(
    client: Client, path: str, temp: str, key: str, source: Source, *, if_absent: bool
) -> ObjectInfo:
    """Store ``source`` at ``temp``, then rename it to ``path`` (unless taken, with if_absent)."""
    sent = _store(client, temp, source)
    try:
        if if_absent and stat(client, path) is not None:
            raise AlreadyExists(f"{key!r} already exists.")
        _rename(client, temp, path, key, if_absent=if_absent)
    except BaseException:
        remove_quietly(client, temp)
        raise
    return ObjectInfo(key=key, size=sent)
