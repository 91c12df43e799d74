"""Store objects as files under a directory of the local filesystem.

Every write goes to a hidden temporary file beside its target and is then
moved into place, so a reader never sees half a file. An atomic create links
the finished temporary file to the target name: ``link`` fails when the name
is taken, which gives ``O_EXCL`` semantics without exposing an empty file
while the content is still being written.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import secrets
from collections.abc import Iterator, Mapping

from stowage.config import option
from stowage.drivers.base import (
    TEMP_PREFIX,
    Capability,
    Download,
    Driver,
    DriverOptions,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.exceptions import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    ServiceError,
    translate,
)
from stowage.records import record

__all__ = ["TEMP_PREFIX", "LocalDriver", "LocalOptions"]

_CHUNK = 1 << 20
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


@record
class LocalOptions(DriverOptions):
    """Options of the local filesystem driver (named as in ``FileSystemStorage``)."""

    location: str | None = option(None, doc="Directory holding the files (defaults to MEDIA_ROOT).")
    file_permissions_mode: int | None = option(
        None, doc="Mode of new files (defaults to FILE_UPLOAD_PERMISSIONS, else the umask)."
    )
    directory_permissions_mode: int | None = option(
        None,
        doc="Mode of new directories (defaults to FILE_UPLOAD_DIRECTORY_PERMISSIONS).",
    )


def _time(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


class LocalDriver(Driver[LocalOptions]):
    """Keep each key as a file below ``location``."""

    options_class = LocalOptions
    claimed_options = frozenset({"location"})
    waits_on_network = False
    setting_defaults = {
        "location": "MEDIA_ROOT",
        "file_permissions_mode": "FILE_UPLOAD_PERMISSIONS",
        "directory_permissions_mode": "FILE_UPLOAD_DIRECTORY_PERMISSIONS",
    }
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SERVER_COPY,
            Capability.LOCAL_PATH,
            Capability.REAL_DIRECTORIES,
            Capability.ACCESSED_TIME,
            Capability.CREATED_TIME,
        }
    )
    max_key_bytes = 4096
    max_part_bytes = 255

    def __init__(self, options: LocalOptions) -> None:
        super().__init__(options)
        root = options.location
        if not root:
            raise ConfigurationError(
                "The local storage has no directory: set its 'location' option "
                "(or MEDIA_ROOT / STATIC_ROOT for the default and static storages)."
            )
        self.root = os.path.abspath(root)
        self.file_mode = options.file_permissions_mode
        self.dir_mode = options.directory_permissions_mode

    def local_path(self, key: str) -> str:
        """Return the absolute path of ``key``."""
        return os.path.join(self.root, *key.split("/")) if key else self.root

    def _info(self, key: str, stat: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            modified=_time(stat.st_mtime),
            created=_time(stat.st_ctime),
            accessed=_time(stat.st_atime),
        )

    def _make_dirs(self, directory: str) -> None:
        try:
            self._make_dirs_with_mode(directory)
        except (FileExistsError, NotADirectoryError) as exc:
            # A file holds a directory's place: not "taken" (a save would try
            # other names in vain) nor "missing", but a name the storage refuses.
            where = os.path.relpath(directory, self.root).replace(os.sep, "/")
            raise ServiceError(
                f"Cannot create the directory {where!r}: a file of that name is in "
                "the way, and it is not a directory."
            ) from exc

    def _make_dirs_with_mode(self, directory: str) -> None:
        if self.dir_mode is None:
            os.makedirs(directory, exist_ok=True)
            return
        # makedirs applies the mode through the umask; clear it for the call,
        # as FileSystemStorage does.
        old_umask = os.umask(0o777 & ~self.dir_mode)
        try:
            os.makedirs(directory, self.dir_mode, exist_ok=True)
        finally:
            os.umask(old_umask)

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
        """Write to a temporary file, then move or link it to ``key``."""
        path = self.local_path(key)
        directory = os.path.dirname(path)
        with translate(f"writing {key!r}"):
            self._make_dirs(directory)
            temp = os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
            # 0o666 less the umask, as FileSystemStorage creates files.
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := stream.read(_CHUNK):
                        out.write(chunk)
                if self.file_mode is not None:
                    os.chmod(temp, self.file_mode)
                if if_absent:
                    self._link_into_place(temp, path, key)
                else:
                    self._replace(temp, path, key)
            finally:
                if os.path.lexists(temp):
                    os.unlink(temp)
            return self._info(key, os.stat(path))

    def adopt(self, key: str, path: str, *, if_absent: bool = False) -> ObjectInfo | None:
        """Move the file at ``path`` to ``key`` when both lie on one file system."""
        target = self.local_path(key)
        directory = os.path.dirname(target)
        with translate(f"writing {key!r}"):
            self._make_dirs(directory)
            if os.stat(path).st_dev != os.stat(directory).st_dev:
                return None
            # Without FILE_UPLOAD_PERMISSIONS the file keeps its temporary 0o600, as in Django.
            if self.file_mode is not None:
                os.chmod(path, self.file_mode)
            if if_absent:
                self._link_into_place(path, target, key)
                os.unlink(path)
            else:
                self._replace(path, target, key)
            return self._info(key, os.stat(target))

    def _replace(self, temp: str, path: str, key: str) -> None:
        try:
            os.replace(temp, path)
        except IsADirectoryError as exc:
            raise ServiceError(
                f"Cannot write {key!r}: a directory of that name is in the way."
            ) from exc

    def _link_into_place(self, temp: str, path: str, key: str) -> None:
        try:
            os.link(temp, path)
        except FileExistsError:
            raise AlreadyExists(f"{key!r} already exists.") from None
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            # No hard links here: reserve the name exclusively, then replace it.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                raise AlreadyExists(f"{key!r} already exists.") from None
            os.replace(temp, path)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Open the file and stream the requested range."""
        with translate(f"reading {key!r}"):
            handle = open(self.local_path(key), "rb")  # noqa: SIM115 - closed by the Download
            try:
                stat = os.fstat(handle.fileno())
                handle.seek(start)
            except BaseException:
                handle.close()
                raise

        def chunks() -> Iterator[bytes]:
            remaining = None if end is None else max(0, end - start)
            try:
                while remaining is None or remaining > 0:
                    want = _CHUNK if remaining is None else min(_CHUNK, remaining)
                    with translate(f"reading {key!r}"):
                        chunk = handle.read(want)
                    if not chunk:
                        return
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk
            finally:
                handle.close()

        return Download(self._info(key, stat), chunks(), handle.close)

    def head(self, key: str) -> ObjectInfo:
        """Describe the file at ``key``; a directory is not an object."""
        path = self.local_path(key)
        with translate(f"inspecting {key!r}"):
            stat = os.stat(path)
        if not os.path.isfile(path):
            raise NotFound(f"{key!r} is a directory, not a file.")
        return self._info(key, stat)

    def exists(self, key: str) -> bool:
        """Tell whether a file or directory exists at ``key``."""
        return os.path.lexists(self.local_path(key))

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory."""
        return os.path.isdir(self.local_path(key))

    def delete(self, key: str) -> None:
        """Remove the file, or the directory if it is empty.

        A directory that still holds files is left alone, as an object store
        leaves a prefix: it is not a file, so there is nothing to delete.
        """
        path = self.local_path(key)
        with translate(f"deleting {key!r}"):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.remove(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a directory with ``scandir``; a missing directory lists nothing."""
        directory = self.local_path(prefix)
        base = f"{prefix}/" if prefix else ""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            key = base + entry.name
            if entry.is_dir():
                if recursive:
                    yield from self.list(key, recursive=True)
                else:
                    yield Prefix(key)
            else:
                with translate(f"listing {key!r}"):
                    yield self._info(key, entry.stat())

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy the file through a temporary file so the target is never partial."""
        with translate(f"copying {src!r}"), open(self.local_path(src), "rb") as source:
            return self.put(dst, source)
