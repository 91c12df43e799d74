"""Say what the server's replies and the socket's errors mean, and what they become.

ftplib raises a reply as an exception whose text starts with its three-digit
code. This module reads the code, tells which failures leave the control
connection unusable, and translates every failure into stowage's tree, with
the password scrubbed from the server's text.
"""

from __future__ import annotations

import contextlib
import ftplib
import functools
import socket

from stowage.drivers._server import redact
from stowage.drivers.errors import ErrorTable, Rule
from stowage.exceptions import (
    AccessDenied,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)

__all__ = ["MISSING", "UNKNOWN_COMMAND", "ReplyErrors", "broken", "reply_code"]

#: Replies meaning "this command is not implemented".
UNKNOWN_COMMAND = ("500", "502", "504")
#: Replies meaning "no such file or directory" (pyftpdlib answers MLSD of one with 501).
MISSING = ("550", "501")


def reply_code(exc: BaseException) -> str:
    """Return the three-digit code that starts the reply ``exc`` carries."""
    return str(exc)[:3]


def _status(exc: BaseException) -> int | None:
    code = reply_code(exc)
    return int(code) if isinstance(exc, ftplib.Error) and code.isdigit() else None


def broken(exc: BaseException) -> bool:
    """Tell whether ``exc`` leaves the control connection unusable."""
    if isinstance(exc, ftplib.error_temp):
        return reply_code(exc) == "421"
    return isinstance(exc, (EOFError, OSError, ftplib.error_reply, ftplib.error_proto))


def _scrubbed(password: str, exc: BaseException) -> str:
    return redact(str(exc).strip(), (password,))


def _out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, ftplib.Error) and "no space" in str(exc).lower()


def _directory_in_the_way(exc: BaseException) -> bool:
    return _status(exc) == 550 and "directory" in str(exc).lower()


def _refused_550(exc: BaseException) -> bool:
    text = str(exc).lower()
    return _status(exc) == 550 and ("permission" in text or "privilege" in text)


_REFUSED_LOGIN = "{what}: the server refused the login ({detail})."
_COLLIDE = "{what}: a file and a directory collide ({detail})."
#: What ftplib's replies and the socket's errors become; ``detail`` has no password.
_ERROR_RULES = (
    Rule(530, AccessDenied, _REFUSED_LOGIN),
    Rule(452, ServiceError, "{what}: the server is out of storage space ({detail})."),
    Rule(552, ServiceError, "{what}: the server is out of storage space ({detail})."),
    Rule(_out_of_space, ServiceError, "{what}: the server is out of storage space ({detail})."),
    Rule(_refused_550, AccessDenied, "{what}: {detail}"),
    Rule(550, NotFound, "{what}: {detail}"),
    Rule(ftplib.error_temp, ServiceUnavailable, "{what}: the server answered {detail}"),
    Rule(ftplib.Error, ServiceError, "{what}: the server answered {detail}"),
    Rule(EOFError, ServiceUnavailable, "{what}: the server closed the connection."),
    # A data connection's kernel timeout (SO_SNDTIMEO/SO_RCVTIMEO) ran out.
    Rule(BlockingIOError, ServiceTimeout, "{what}: the data connection moved nothing in time."),
    Rule(socket.gaierror, ServiceUnavailable, "{what}: cannot resolve {host!r} ({detail})."),
    Rule(ConnectionRefusedError, ServiceUnavailable, "{what}: connection refused."),
)


class ReplyErrors:
    """Translate the failures of one server's calls, by what the call was doing."""

    def __init__(self, host: str, password: str) -> None:
        self._host = host
        # The tables hold the password to scrub, not the driver (no reference cycle).
        detail = functools.partial(_scrubbed, password)
        self._call = ErrorTable(*_ERROR_RULES, status=_status, detail=detail)
        # Any refusal while logging in is a refused login.
        self._connect = self._call.extend(Rule(ftplib.error_perm, AccessDenied, _REFUSED_LOGIN))
        # "Is a directory" / "Not a directory" on a write: a name in the way, not a missing one.
        self._write = self._call.extend(Rule(_directory_in_the_way, ServiceError, _COLLIDE))

    def translate(
        self, what: str, *, connecting: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """Translate ftplib's and the socket's errors raised in the block."""
        if connecting:
            table = self._connect
        elif what.startswith("writing"):
            table = self._write
        else:
            table = self._call
        return table.translate(what, host=self._host)
