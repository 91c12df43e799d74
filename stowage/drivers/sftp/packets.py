"""SFTP version 3 packets (draft-ietf-secsh-filexfer-02), without any I/O.

The numbers the protocol names, the encoding of its integers, strings and
file attributes, a :class:`Reader` that decodes a packet's fields in order,
and the errors a status reply becomes (:func:`status_error`).
"""

from __future__ import annotations

import struct

from stowage.records import record

__all__ = [
    "FXF_APPEND",
    "FXF_CREAT",
    "FXF_EXCL",
    "FXF_READ",
    "FXF_TRUNC",
    "FXF_WRITE",
    "Attrs",
    "BadMessage",
    "ConnectionLost",
    "DirNotEmpty",
    "EndOfFile",
    "Failure",
    "FileAlreadyExists",
    "Name",
    "NoConnection",
    "NoSpaceOnFilesystem",
    "NoSuchFile",
    "NoSuchPath",
    "OpUnsupported",
    "PermissionDenied",
    "QuotaExceeded",
    "Reader",
    "StatusError",
    "WriteProtect",
    "status_error",
    "string",
    "uint32",
    "uint64",
]

#: The protocol version this module speaks.
VERSION = 3

# Packet types.
FXP_INIT = 1
FXP_VERSION = 2
FXP_OPEN = 3
FXP_CLOSE = 4
FXP_READ = 5
FXP_WRITE = 6
FXP_LSTAT = 7
FXP_FSTAT = 8
FXP_SETSTAT = 9
FXP_FSETSTAT = 10
FXP_OPENDIR = 11
FXP_READDIR = 12
FXP_REMOVE = 13
FXP_MKDIR = 14
FXP_RMDIR = 15
FXP_REALPATH = 16
FXP_STAT = 17
FXP_RENAME = 18
FXP_READLINK = 19
FXP_SYMLINK = 20
FXP_STATUS = 101
FXP_HANDLE = 102
FXP_DATA = 103
FXP_NAME = 104
FXP_ATTRS = 105
FXP_EXTENDED = 200
FXP_EXTENDED_REPLY = 201

# Status codes (9 and up belong to later versions of the protocol).
FX_OK = 0
FX_EOF = 1
FX_NO_SUCH_FILE = 2
FX_PERMISSION_DENIED = 3
FX_FAILURE = 4
FX_BAD_MESSAGE = 5
FX_NO_CONNECTION = 6
FX_CONNECTION_LOST = 7
FX_OP_UNSUPPORTED = 8
FX_NO_SUCH_PATH = 10
FX_FILE_ALREADY_EXISTS = 11
FX_WRITE_PROTECT = 12
FX_NO_SPACE_ON_FILESYSTEM = 14
FX_QUOTA_EXCEEDED = 15
FX_DIR_NOT_EMPTY = 18

# Open flags (pflags).
FXF_READ = 0x01
FXF_WRITE = 0x02
FXF_APPEND = 0x04
FXF_CREAT = 0x08
FXF_TRUNC = 0x10
FXF_EXCL = 0x20

# Attribute flags.
ATTR_SIZE = 0x01
ATTR_UIDGID = 0x02
ATTR_PERMISSIONS = 0x04
ATTR_ACMODTIME = 0x08
ATTR_EXTENDED = 0x80000000

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def uint32(value: int) -> bytes:
    """Encode ``value`` as a big-endian uint32."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit in an SFTP uint32")
    return _U32.pack(value)


def uint64(value: int) -> bytes:
    """Encode ``value`` as a big-endian uint64."""
    if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"{value} does not fit in an SFTP uint64")
    return _U64.pack(value)


def string(value: bytes | str) -> bytes:
    """Encode ``value`` as an SFTP string: its length, then its bytes (text as UTF-8)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return uint32(len(value)) + value


class StatusError(Exception):
    """An error status the server answered, or a session that ended (:class:`ConnectionLost`).

    ``code`` is the status code, ``reason`` the server's message (may be empty).
    """

    #: The status code of the class; the base class takes any.
    CODE = FX_FAILURE
    #: The message when the server gives none.
    DEFAULT = "SFTP request failed"

    def __init__(self, reason: str = "", *, code: int | None = None) -> None:
        self.code = self.CODE if code is None else code
        self.reason = reason
        super().__init__(reason or self.DEFAULT)


class EndOfFile(StatusError):
    """The end of a file or directory listing (read past it)."""

    CODE = FX_EOF
    DEFAULT = "End of file"


class NoSuchFile(StatusError):
    """Nothing is at the path."""

    CODE = FX_NO_SUCH_FILE
    DEFAULT = "No such file"


class PermissionDenied(StatusError):
    """The server's user may not do that."""

    CODE = FX_PERMISSION_DENIED
    DEFAULT = "Permission denied"


class Failure(StatusError):
    """A failure without a more precise code (SFTPv3 uses it for most errors)."""

    CODE = FX_FAILURE
    DEFAULT = "Failure"


class BadMessage(StatusError):
    """A malformed packet, from either side."""

    CODE = FX_BAD_MESSAGE
    DEFAULT = "Bad message"


class NoConnection(StatusError):
    """The client has no connection to the server."""

    CODE = FX_NO_CONNECTION
    DEFAULT = "No connection"


class ConnectionLost(StatusError):
    """The connection to the server is gone (the process or its pipes ended)."""

    CODE = FX_CONNECTION_LOST
    DEFAULT = "Connection lost"


class OpUnsupported(StatusError):
    """The server does not implement the request."""

    CODE = FX_OP_UNSUPPORTED
    DEFAULT = "Operation unsupported"


class NoSuchPath(StatusError):
    """A directory of the path does not exist (later protocol versions)."""

    CODE = FX_NO_SUCH_PATH
    DEFAULT = "No such path"


class FileAlreadyExists(StatusError):
    """The file exists already (later protocol versions)."""

    CODE = FX_FILE_ALREADY_EXISTS
    DEFAULT = "File already exists"


class WriteProtect(StatusError):
    """The file system is read-only (later protocol versions)."""

    CODE = FX_WRITE_PROTECT
    DEFAULT = "Write protected"


class NoSpaceOnFilesystem(StatusError):
    """The file system is full (later protocol versions)."""

    CODE = FX_NO_SPACE_ON_FILESYSTEM
    DEFAULT = "No space on filesystem"


class QuotaExceeded(StatusError):
    """The user's quota is used up (later protocol versions)."""

    CODE = FX_QUOTA_EXCEEDED
    DEFAULT = "Quota exceeded"


class DirNotEmpty(StatusError):
    """The directory still holds files (later protocol versions)."""

    CODE = FX_DIR_NOT_EMPTY
    DEFAULT = "Directory not empty"


_ERRORS: dict[int, type[StatusError]] = {
    cls.CODE: cls
    for cls in (
        EndOfFile,
        NoSuchFile,
        PermissionDenied,
        Failure,
        BadMessage,
        NoConnection,
        ConnectionLost,
        OpUnsupported,
        NoSuchPath,
        FileAlreadyExists,
        WriteProtect,
        NoSpaceOnFilesystem,
        QuotaExceeded,
        DirNotEmpty,
    )
}


def status_error(code: int, reason: str = "") -> StatusError:
    """Return the error for status ``code`` (a plain :class:`StatusError` for unknown codes)."""
    cls = _ERRORS.get(code)
    return StatusError(reason, code=code) if cls is None else cls(reason)


@record(slots=True)
class Attrs:
    """File attributes: each field None when not known, or not to be set.

    SFTPv3 sets ``uid`` and ``gid`` together, and ``atime`` and ``mtime``
    together: give both of a pair or neither.
    """

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    atime: int | None = None
    mtime: int | None = None

    @property
    def atime_ns(self) -> int | None:
        """Return None: SFTPv3 times are whole seconds."""
        return None

    @property
    def mtime_ns(self) -> int | None:
        """Return None: SFTPv3 times are whole seconds."""
        return None

    def encode(self) -> bytes:
        """Return the ATTRS structure carrying the fields that are not None."""
        flags = 0
        fields: list[bytes] = []
        if self.size is not None:
            flags |= ATTR_SIZE
            fields.append(uint64(self.size))
        if self.uid is not None and self.gid is not None:
            flags |= ATTR_UIDGID
            fields += (uint32(self.uid), uint32(self.gid))
        elif self.uid is not None or self.gid is not None:
            raise ValueError("SFTP sets uid and gid together: give both or neither")
        if self.permissions is not None:
            flags |= ATTR_PERMISSIONS
            fields.append(uint32(self.permissions))
        if self.atime is not None and self.mtime is not None:
            flags |= ATTR_ACMODTIME
            fields += (uint32(self.atime), uint32(self.mtime))
        elif self.atime is not None or self.mtime is not None:
            raise ValueError("SFTP sets atime and mtime together: give both or neither")
        return uint32(flags) + b"".join(fields)


@record(slots=True)
class Name:
    """One entry of a directory listing."""

    filename: str
    attrs: Attrs


class Reader:
    """Decode the fields of one packet in order; a packet too short raises :class:`BadMessage`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def _take(self, size: int) -> memoryview:
        start = self._pos
        end = start + size
        if end > len(self._data):
            raise BadMessage("SFTP packet ends early")
        self._pos = end
        return self._data[start:end]

    def at_end(self) -> bool:
        """Tell whether every byte was read."""
        return self._pos >= len(self._data)

    def uint32(self) -> int:
        """Read a uint32."""
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def uint64(self) -> int:
        """Read a uint64."""
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def view(self) -> memoryview:
        """Read a string, without copying it."""
        return self._take(self.uint32())

    def raw(self) -> bytes:
        """Read a string as bytes."""
        return bytes(self.view())

    def text(self) -> str:
        """Read a string as UTF-8 text (undecodable bytes kept as surrogates)."""
        return str(self.view(), "utf-8", "surrogateescape")

    def attrs(self) -> Attrs:
        """Read an ATTRS structure (extended attributes are skipped)."""
        flags = self.uint32()
        size = self.uint64() if flags & ATTR_SIZE else None
        uid = gid = None
        if flags & ATTR_UIDGID:
            uid, gid = self.uint32(), self.uint32()
        permissions = self.uint32() if flags & ATTR_PERMISSIONS else None
        atime = mtime = None
        if flags & ATTR_ACMODTIME:
            atime, mtime = self.uint32(), self.uint32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.uint32()):
                self.view()  # type
                self.view()  # data
        return Attrs(size, uid, gid, permissions, atime, mtime)

    def name(self) -> Name:
        """Read one entry of a NAME reply: file name, long name (dropped), attributes."""
        filename = self.text()
        self.view()
        return Name(filename, self.attrs())
