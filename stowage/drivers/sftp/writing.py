"""Write files through a hidden temporary name, renamed into place when complete.

Every write goes to a hidden temporary file in the target's directory and is
then renamed into place, so no reader sees half a file and an interrupted
upload leaves nothing under the name. An atomic create uses SFTP's standard
rename, which refuses a taken name; a replacing write uses OpenSSH's
``posix-rename@openssh.com``. Missing parent directories are created.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from dataclasses import dataclass
from typing import cast

from stowage.drivers._server import temp_name
from stowage.drivers.base import ObjectInfo
from stowage.drivers.sftp.clients import Attributes, RemoteFile, Session, errors_of
from stowage.drivers.sftp.connection import Connection
from stowage.drivers.sftp.packets import FXF_CREAT, FXF_EXCL, FXF_READ, FXF_WRITE
from stowage.drivers.sftp.paths import info, is_dir, is_directory, stat_or_none
from stowage.exceptions import AlreadyExists, ServiceError

__all__ = ["ONE_REQUEST", "Upload", "Writer"]

#: Bytes written in one request: every SFTP server takes packets of 34,000 bytes.
ONE_REQUEST = 32 * 1024


@dataclass
class Upload:
    """A temporary file being written on one SFTP session."""

    sftp: Session
    handle: RemoteFile
    temp: str
    path: str
    key: str
    open: bool = True


class Writer:
    """Write files for one driver: temporary file, modes and owner, rename into place."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.options = connection.options

    async def mkdirs(self, sftp: Session, directory: str, *, parents: bool = True) -> None:
        """Create ``directory`` (and its missing parents), with the configured mode."""
        if directory in ("", ".", "/"):
            return
        errors = errors_of(sftp)
        try:
            await sftp.mkdir(directory)
        except errors.no_such_file:
            if not parents:
                raise
            await self.mkdirs(sftp, posixpath.dirname(directory))
            await self.mkdirs(sftp, directory, parents=False)
            return
        except errors.status:
            attrs = await stat_or_none(sftp, directory)
            if attrs is not None and is_dir(attrs):
                return  # made meanwhile by another writer
            if attrs is not None:
                raise ServiceError(
                    f"Cannot create the directory {directory!r}: a file of that name is in "
                    "the way, and it is not a directory."
                ) from None
            raise
        await self._set_owner_and_mode(sftp, directory, self.options.directory_mode)

    async def _set_owner_and_mode(
        self,
        sftp: Session,
        target: str | RemoteFile,
        mode: int | None,
    ) -> None:
        # Set explicitly: the server applies its umask to modes given at creation.
        o = self.options
        if mode is None and o.uid is None and o.gid is None:
            return
        uid, gid = o.uid, o.gid
        if (uid is None) != (gid is None):
            # SFTP sets owner and group together: keep the one not configured.
            now = await (target.stat() if not isinstance(target, str) else sftp.stat(target))
            uid = now.uid if uid is None else uid
            gid = now.gid if gid is None else gid
        attrs = self.connection.client.attrs(permissions=mode, uid=uid, gid=gid)
        if isinstance(target, str):
            await sftp.setstat(target, attrs)
        else:
            await target.setstat(attrs)

    async def open_temp(
        self, sftp: Session, path: str, key: str, *, block_size: int = -1
    ) -> Upload:
        """Create a new hidden file beside ``path`` to write ``key``'s content to.

        ``block_size`` 0 makes each write one request, of any size (the
        client's default splits a write into requests sent together).
        """
        directory = posixpath.dirname(path)
        temp = posixpath.join(directory, temp_name())
        flags = FXF_WRITE | FXF_CREAT | FXF_EXCL
        errors = errors_of(sftp)
        try:
            handle = await sftp.open(temp, flags, encoding=None, block_size=block_size)
        except (*errors.no_such_file, *errors.failure):
            # A plain failure may be a file where the directory should be: mkdirs says so.
            await self.mkdirs(sftp, directory)
            handle = await sftp.open(temp, flags, encoding=None, block_size=block_size)
        return Upload(sftp, handle, temp, path, key)

    async def write(self, upload: Upload, data: bytes, offset: int) -> None:
        """Write ``data`` at ``offset`` of the temporary file."""
        try:
            await self.connection.timed(upload.handle.write(data, offset))
        except errors_of(upload.sftp).failure as exc:
            # SFTPv3 has no code for a full disk: OpenSSH reports ENOSPC, EDQUOT
            # and EFBIG as a plain failure, and only on writes.
            reason = getattr(exc, "reason", "") or "failure"
            raise ServiceError(
                f"writing {upload.key!r} on {self.connection.login.target}: the server could "
                f"not write ({reason}); a full disk, a quota or a file size limit is the usual "
                "cause"
            ) from exc

    async def put_whole(
        self, sftp: Session, path: str, key: str, data: bytes, if_absent: bool
    ) -> ObjectInfo:
        """Write all of ``data`` in one trip to the loop: temporary file, write, rename.

        Data that fits in one SFTP request goes with the close, in one round trip.
        """
        single = len(data) <= ONE_REQUEST
        upload = await self.open_temp(sftp, path, key, block_size=0 if single else -1)
        try:
            if data and not single:
                await self.write(upload, data, 0)
            return await self.finish(upload, if_absent, data if single else b"")
        except BaseException:
            await self.discard(upload)
            raise

    async def copy_from(self, upload: Upload, source: str) -> None:
        """Fill the temporary file with the server's copy of ``source`` (``copy-data``)."""
        async with upload.sftp.open(source, FXF_READ, encoding=None) as handle:
            await upload.sftp.remote_copy(handle, upload.handle)

    async def finish(self, upload: Upload, if_absent: bool, last: bytes = b"") -> ObjectInfo:
        """Close the temporary file and rename it into place (refusing a taken name if asked).

        ``last`` is written first, in the same round trip (the handle must make
        each write one request: see :meth:`open_temp`).
        """
        return await self.connection.timed(self._close_and_rename(upload, if_absent, last))

    async def _close_and_rename(self, upload: Upload, if_absent: bool, last: bytes) -> ObjectInfo:
        sftp, handle = upload.sftp, upload.handle
        await self._set_owner_and_mode(sftp, handle, self.options.file_mode)
        upload.open = False
        # Sent together, in this order: the server handles the requests on one
        # handle in the order they come. Nothing is renamed unless all succeed.
        writes = [self.write(upload, last, 0)] if last else []
        done = await asyncio.gather(*writes, handle.stat(), handle.close(), return_exceptions=True)
        failed = next((r for r in done if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        attrs = cast("Attributes", done[-2])
        if if_absent:
            try:
                # SFTPv3 rename never replaces: it fails when the name is taken.
                await sftp.rename(upload.temp, upload.path)
            except errors_of(sftp).status:
                if await stat_or_none(sftp, upload.path) is not None:
                    raise AlreadyExists(f"{upload.key!r} already exists.") from None
                raise
        else:
            try:
                await sftp.posix_rename(upload.temp, upload.path)
            except errors_of(sftp).op_unsupported:
                with contextlib.suppress(*errors_of(sftp).no_such_file):
                    await sftp.remove(upload.path)
                await sftp.rename(upload.temp, upload.path)
            except errors_of(sftp).status:
                if await is_directory(sftp, upload.path):
                    raise ServiceError(
                        f"Cannot write {upload.key!r}: a directory of that name is in the way."
                    ) from None
                raise
        return info(upload.key, attrs)

    async def discard(self, upload: Upload) -> None:
        """Close and remove the temporary file, quietly: the write already failed."""
        with contextlib.suppress(Exception):
            await self.connection.timed(self._close_and_remove(upload))

    @staticmethod
    async def _close_and_remove(upload: Upload) -> None:
        if upload.open:
            upload.open = False
            with contextlib.suppress(Exception):
                await upload.handle.close()
        await upload.sftp.remove(upload.temp)
