"""Inspect, list and remove paths on one SFTP session: the requests that move no content.

Each coroutine takes the session first, as
:meth:`~stowage.drivers.sftp.connection.Connection.run` calls it. Only
regular files are objects; a symbolic link counts as what it points to, and
the hidden temporary files of uploads under way are never listed.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import stat

from stowage.drivers.base import TEMP_PREFIX, ObjectInfo
from stowage.drivers.sftp.clients import Attributes, Session, errors_of
from stowage.exceptions import NotFound

__all__ = [
    "delete",
    "described",
    "exists",
    "head",
    "info",
    "is_dir",
    "is_directory",
    "is_file",
    "readdir",
    "stat_or_none",
    "supports_remote_copy",
]


def _time(seconds: int | None, nanoseconds: int | None) -> dt.datetime | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds + (nanoseconds or 0) / 1e9, dt.UTC)


def is_dir(attrs: Attributes) -> bool:
    """Tell whether ``attrs`` describe a directory."""
    return attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)


def is_file(attrs: Attributes) -> bool:
    """Tell whether ``attrs`` describe a regular file (or a server that gives no type)."""
    return attrs.permissions is None or stat.S_ISREG(attrs.permissions)


def info(key: str, attrs: Attributes) -> ObjectInfo:
    """Describe the file at ``key`` from its attributes."""
    return ObjectInfo(
        key=key,
        size=attrs.size or 0,
        modified=_time(attrs.mtime, attrs.mtime_ns),
        accessed=_time(attrs.atime, attrs.atime_ns),
    )


async def stat_or_none(sftp: Session, path: str) -> Attributes | None:
    """Return the attributes of ``path`` (links followed), or None if nothing is there."""
    try:
        return await sftp.stat(path)
    except errors_of(sftp).no_such_file:
        return None


def described(key: str, attrs: Attributes | None) -> ObjectInfo:
    """Describe the file at ``key`` from its attributes (None: nothing is there).

    A directory is not an object: it is not found, as a missing name.
    """
    if attrs is None:
        raise NotFound(f"{key!r} does not exist.")
    if not is_file(attrs):
        raise NotFound(f"{key!r} is a directory, not a file.")
    return info(key, attrs)


async def head(sftp: Session, path: str, key: str) -> ObjectInfo:
    """Describe the file at ``path``; a directory is not an object."""
    return described(key, await stat_or_none(sftp, path))


async def exists(sftp: Session, path: str) -> bool:
    """Tell whether anything is at ``path``."""
    return await stat_or_none(sftp, path) is not None


async def is_directory(sftp: Session, path: str) -> bool:
    """Tell whether ``path`` is a directory."""
    attrs = await stat_or_none(sftp, path)
    return attrs is not None and is_dir(attrs)


async def delete(sftp: Session, path: str) -> None:
    """Remove the file at ``path``, or the directory if it is empty; nothing there is fine."""
    errors = errors_of(sftp)
    try:
        await sftp.remove(path)
        return
    except errors.no_such_file:
        return
    except errors.status as exc:
        refused = exc
    try:
        attrs = await sftp.lstat(path)
    except errors.no_such_file:
        return
    if not is_dir(attrs):
        raise refused
    try:
        await sftp.rmdir(path)
    except (*errors.no_such_file, *errors.dir_not_empty):
        pass
    except errors.failure:
        # SFTPv3 reports a directory that still holds files as a plain
        # failure: it is not a file, so there is nothing to delete.
        pass


async def readdir(sftp: Session, path: str) -> list[tuple[str, Attributes]]:
    """Return the files and directories in ``path`` by name; a missing one holds none."""
    try:
        names = await sftp.readdir(path)
    except errors_of(sftp).no_such_file:
        return []
    entries = []
    for entry in names:
        name = str(entry.filename)
        if name in (".", "..") or name.startswith(TEMP_PREFIX):
            continue
        attrs = entry.attrs
        if attrs.permissions is not None and stat.S_ISLNK(attrs.permissions):
            target = await stat_or_none(sftp, posixpath.join(path, name))
            if target is None:
                continue  # a dangling link
            attrs = target
        if is_dir(attrs) or is_file(attrs):
            entries.append((name, attrs))
    entries.sort(key=lambda item: item[0])
    return entries


async def supports_remote_copy(sftp: Session) -> bool:
    """Tell whether the server copies files itself (the ``copy-data`` extension)."""
    return bool(sftp.supports_remote_copy)
