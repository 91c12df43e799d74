"""Answer the driver contract for a directory on an FTP server.

Each call runs on a connection borrowed from the pool
(:mod:`~stowage.drivers.ftp.connection`); the requests it makes come from
:mod:`~stowage.drivers.ftp.lookups`, :mod:`~stowage.drivers.ftp.writing`
and :mod:`~stowage.drivers.ftp.reading`.
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
from collections.abc import Iterator, Mapping

from stowage.drivers import _server
from stowage.drivers.base import (
    TEMP_PREFIX,
    Capability,
    Download,
    Driver,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.drivers.ftp.connection import Client, ConnectionPool
from stowage.drivers.ftp.lookups import file_info, list_directory, stat
from stowage.drivers.ftp.options import FTPOptions, Server
from stowage.drivers.ftp.reading import Retrieval, open_transfer
from stowage.drivers.ftp.replies import MISSING, reply_code
from stowage.drivers.ftp.writing import Source, SourceFailed, remove_quietly, upload
from stowage.exceptions import ServiceError, StowageError

__all__ = ["FTPDriver"]


class FTPDriver(Driver[FTPOptions]):
    """Keep each key as a file below ``root_path`` on one FTP server."""

    options_class = FTPOptions
    claimed_options = frozenset({"base_url", "location"})
    capabilities = frozenset({Capability.PUBLIC_URL, Capability.REAL_DIRECTORIES})
    max_key_bytes = 4096
    max_part_bytes = 255

    def __init__(self, options: FTPOptions) -> None:
        super().__init__(options)
        self._server = Server.from_options(options)
        self._pool = ConnectionPool(options, self._server)
        #: The server, without the password, for messages.
        self.address = self._pool.address

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}/{self._server.root_path}>"

    def _path(self, key: str) -> str:
        root = self._pool.root
        assert root is not None, "the root is known once connected"
        return _server.below_root(root, key)

    def close(self) -> None:
        """Log out of every idle connection; the driver reconnects when used again."""
        self._pool.close()

    def head(self, key: str) -> ObjectInfo:
        """Describe the file at ``key`` (``MLST``, else ``SIZE`` and ``MDTM``)."""
        return self._pool.call(
            f"inspecting {key!r}", lambda c: file_info(c, self._path(key), key, modified=True)
        )

    def exists(self, key: str) -> bool:
        """Tell whether a file or a directory exists at ``key``."""
        return (
            self._pool.call(f"inspecting {key!r}", lambda c: stat(c, self._path(key))) is not None
        )

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory."""
        entry = self._pool.call(f"inspecting {key!r}", lambda c: stat(c, self._path(key)))
        return entry is not None and entry.is_dir

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` from ``start`` (``REST``) up to ``end`` with ``RETR``."""
        what = f"reading {key!r}"
        (info, conn, stop), client = self._pool.borrow(
            what, lambda c: open_transfer(c, self._path(key), key, start, end)
        )
        if conn is None:
            self._pool.release(client)
            return Download(info, iter(()))
        transfer = Retrieval(self._pool, client, conn, what, stop - start, to_end=stop == info.size)
        return Download(info, transfer, transfer.close)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a directory (``MLSD``, else ``LIST``/``NLST``); a missing one lists nothing."""
        entries = self._pool.call(
            f"listing {prefix!r}", lambda c: list_directory(c, self._path(prefix))
        )
        base = f"{prefix}/" if prefix else ""
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(TEMP_PREFIX):
                continue
            key = base + entry.name
            if not entry.is_dir:
                yield ObjectInfo(key=key, size=entry.size, modified=entry.modified)
            elif recursive:
                yield from self.list(key, recursive=True)
            else:
                yield Prefix(key)

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload to a temporary name beside ``key``, then rename it into place."""
        source = Source(stream)
        temp_name = _server.temp_name()

        def work(client: Client) -> ObjectInfo:
            path = self._path(key)
            temp = posixpath.join(posixpath.dirname(path), temp_name)
            return upload(client, path, temp, key, source, if_absent=if_absent)

        try:
            return self._pool.call(f"writing {key!r}", work, source.untouched)
        except SourceFailed as failed:
            original = failed.original
        except ServiceError:
            # The connection broke mid-upload: remove the hidden leftover if we can.
            if source.touched:
                self._cleanup(key, temp_name)
            raise
        raise original

    def _cleanup(self, key: str, temp_name: str) -> None:
        def remove(client: Client) -> None:
            remove_quietly(client, posixpath.join(posixpath.dirname(self._path(key)), temp_name))

        with contextlib.suppress(StowageError):
            self._pool.call(f"cleaning up after {key!r}", remove)

    def delete(self, key: str) -> None:
        """Delete the file, or the directory if it is empty; a missing key is silent."""

        def remove(client: Client) -> None:
            path = self._path(key)
            try:
                client.delete(path)
                return
            except ftplib.error_perm as exc:
                if reply_code(exc) not in MISSING:
                    raise
                failure = exc
            entry = stat(client, path)
            if entry is None:
                return
            if not entry.is_dir:
                raise failure
            with contextlib.suppress(ftplib.error_perm):
                client.rmd(path)  # a directory still holding files stays

        self._pool.call(f"deleting {key!r}", remove)

    def public_url(self, key: str) -> str:
        """Return ``base_url`` joined with the quoted key."""
        return _server.public_url(
            self.options.base_url,
            key,
            missing="The ftp backend has no URL for files: set its 'base_url' option to the "
            "HTTP address that serves them.",
        )
