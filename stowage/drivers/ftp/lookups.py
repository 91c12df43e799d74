"""Ask the server what is at a path and what a directory holds.

``MLST`` (or ``SIZE``, and ``CWD`` for a directory) describes one path;
listings use ``MLSD``; a server without it is listed with ``LIST`` (Unix or
DOS format), and with ``NLST`` plus ``SIZE`` when ``LIST`` gives a format
neither of those. A server that refuses MLST or MLSD is marked in the pool's
:class:`~stowage.drivers.ftp.connection.Features` and not asked again.
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath

from stowage.drivers.base import ObjectInfo
from stowage.drivers.ftp.connection import RECV, Client, finish_data
from stowage.drivers.ftp.listing import (
    Entry,
    entry_from_facts,
    entry_from_list,
    entry_from_mlsd,
    parse_time,
)
from stowage.drivers.ftp.replies import MISSING, UNKNOWN_COMMAND, reply_code
from stowage.exceptions import NotFound

__all__ = ["file_info", "list_directory", "stat"]


def stat(client: Client, path: str) -> Entry | None:
    """Describe ``path`` (a file or a directory) or return None if it is absent."""
    if client.features.mlst:
        try:
            reply = client.sendcmd(f"MLST {path}")
        except ftplib.error_perm as exc:
            code = reply_code(exc)
            if code in UNKNOWN_COMMAND:
                client.features.mlst = False
                return stat(client, path)
            if code in MISSING:
                return None
            raise
        for line in reply.splitlines()[1:]:
            if line.startswith(" "):
                return entry_from_facts(posixpath.basename(path), line[1:].partition(" ")[0])
        raise ftplib.error_proto(f"MLST answered no facts for {path!r}")
    try:
        size = client.size(path)
    except ftplib.error_perm as exc:
        if reply_code(exc) not in MISSING:
            raise
    else:
        if size is not None:
            return Entry(posixpath.basename(path), is_dir=False, size=size)
    try:
        client.cwd(path)
    except ftplib.error_perm as exc:
        if reply_code(exc) in MISSING:
            return None
        raise
    return Entry(posixpath.basename(path), is_dir=True)


def file_info(client: Client, path: str, key: str, *, modified: bool) -> ObjectInfo:
    """Describe the file at ``path``; ``modified`` asks ``MDTM`` where MLST is missing."""
    entry = stat(client, path)
    if entry is None:
        raise NotFound(f"{key!r} does not exist.")
    if entry.is_dir:
        raise NotFound(f"{key!r} is a directory, not a file.")
    when = entry.modified
    if when is None and modified:
        with contextlib.suppress(ftplib.error_perm):
            when = parse_time(client.sendcmd(f"MDTM {path}")[4:])
    return ObjectInfo(key=key, size=entry.size, modified=when)


def _read_lines(client: Client, command: str) -> list[str]:
    conn = client.transfercmd(command)
    chunks = []
    try:
        while data := conn.recv(RECV):
            chunks.append(data)
    finally:
        finish_data(conn)
    client.voidresp()
    text = b"".join(chunks).decode(client.encoding, "replace")
    return [line for line in text.splitlines() if line.strip()]


def list_directory(client: Client, path: str) -> list[Entry]:
    """Return what the directory ``path`` holds; a missing one holds nothing."""
    if client.features.mlst:
        try:
            lines = _read_lines(client, f"MLSD {path}")
        except ftplib.error_perm as exc:
            code = reply_code(exc)
            if code in MISSING:
                return []
            if code not in UNKNOWN_COMMAND:
                raise
            client.features.mlst = False
        else:
            return [e for e in map(entry_from_mlsd, lines) if e is not None]
    # Without MLSD: change into the directory so LIST and NLST take no
    # argument (no option parsing of names, no listing of a file).
    try:
        client.cwd(path)
    except ftplib.error_perm as exc:
        if reply_code(exc) in MISSING:
            return []
        raise
    try:
        return [e for e in map(entry_from_list, _read_lines(client, "LIST")) if e]
    except ValueError:
        pass
    entries = []
    for line in _read_lines(client, "NLST"):
        name = posixpath.basename(line.rstrip("/"))
        if name in (".", ".."):
            continue
        entry = stat(client, f"{path.rstrip('/')}/{name}")
        if entry is not None:
            entries.append(Entry(name, entry.is_dir, entry.size, entry.modified))
    return entries
