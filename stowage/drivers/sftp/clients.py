"""The two SFTP clients the driver speaks through, and what it must know of each.

``client="asyncssh"`` (the default) runs SSH in Python with asyncssh;
``client="openssh"`` runs OpenSSH's ``ssh`` program and speaks SFTP to it over
its pipes (:mod:`stowage.drivers.sftp.wire`). The driver's requests are the
same on both: each :class:`Client` names the errors the driver tells apart,
makes file attributes, says which errors mean a lost connection and what
every error becomes.

asyncssh is imported only when its client is used (and then at its first
error or connection), the wire client never imports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from stowage.drivers.errors import Rule
from stowage.drivers.sftp import packets
from stowage.drivers.sftp.wire import WireClient
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)
from stowage.records import record

if TYPE_CHECKING:
    import asyncssh
else:
    from stowage.drivers.sftp._asyncssh import asyncssh

# The driver passes one client's objects back to the same client only (its
# attributes to its setstat, its files to its remote_copy), which a union of
# the two clients' types cannot say: these names document what a value is,
# and the driver contract, run on both clients, checks that it fits.
#: An SFTP session: an ``asyncssh.SFTPClient`` or a :class:`WireClient`.
Session: TypeAlias = Any
#: An open remote file: an ``asyncssh.SFTPClientFile`` or a ``WireFile``.
RemoteFile: TypeAlias = Any
#: File attributes: an ``asyncssh.SFTPAttrs`` or a :class:`~.packets.Attrs`.
Attributes: TypeAlias = Any

__all__ = [
    "ASYNCSSH",
    "CLIENTS",
    "OPENSSH",
    "Attributes",
    "Client",
    "Errors",
    "RemoteFile",
    "Session",
    "errors_of",
]

_Types: TypeAlias = tuple[type[BaseException], ...]


@record
class Errors:
    """The SFTP errors the driver tells apart, as one client raises them."""

    no_such_file: _Types
    failure: _Types
    op_unsupported: _Types
    dir_not_empty: _Types
    #: Any error status the server answered.
    status: _Types
    #: The connection is gone: the request may go again on a new one.
    lost: _Types
    #: The server ended the connection (reported as lost, not sent again).
    disconnected: _Types
    #: The server refused the login.
    login_refused: _Types
    file_already_exists: _Types
    permission_denied: _Types
    no_space: _Types
    #: Any other error of the client library.
    other: _Types


class Client:
    """One SFTP client library, as the driver sees it."""

    def __init__(
        self,
        name: str,
        errors: Callable[[], Errors],
        attrs: Callable[..., Any],
    ) -> None:
        self.name = name
        self._errors = functools.cache(errors)
        self._attrs = attrs

    def errors(self) -> Errors:
        """Return the client's errors (importing its library at the first call)."""
        return self._errors()

    def attrs(
        self, *, permissions: int | None = None, uid: int | None = None, gid: int | None = None
    ) -> Attributes:
        """Return file attributes to set, in the client's own form."""
        return self._attrs(permissions=permissions, uid=uid, gid=gid)

    @functools.cached_property
    def retried(self) -> _Types:
        """Return the errors sent again: a lost connection, failing to connect, a timeout.

        A timeout is retried unless the request may have landed (see
        :meth:`~stowage.drivers.sftp.connection.Connection.run`).
        """
        return (*self.errors().lost, ServiceUnavailable, TimeoutError)

    @functools.cached_property
    def rules(self) -> tuple[Rule, ...]:
        """Return what the client's errors become.

        ``target`` names the server in the messages, ``detail`` is redacted.
        """
        e = self.errors()
        where = "{what} on {target}: {detail}"
        return (
            Rule(e.no_such_file, NotFound, where),
            Rule(e.file_already_exists, AlreadyExists, where),
            Rule(e.permission_denied, AccessDenied, where),
            Rule(e.no_space, ServiceError, where + " (no space left on the server)"),
            Rule(
                e.login_refused,
                AccessDenied,
                "{what}: {target} refused the login; check the username, password or private key",
            ),
            Rule(
                (*e.lost, *e.disconnected),
                ServiceUnavailable,
                where + " (the connection was lost)",
            ),
            Rule((*e.status, *e.other), ServiceError, where),
            Rule(TimeoutError, ServiceTimeout, "{what} on {target}: no answer in time"),
        )


def _asyncssh_errors() -> Errors:
    return Errors(
        no_such_file=(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath),
        failure=(asyncssh.SFTPFailure,),
        op_unsupported=(asyncssh.SFTPOpUnsupported,),
        dir_not_empty=(asyncssh.SFTPDirNotEmpty,),
        status=(asyncssh.SFTPError,),
        lost=(
            asyncssh.SFTPConnectionLost,
            asyncssh.SFTPNoConnection,
            asyncssh.ConnectionLost,
            asyncssh.ChannelOpenError,
            BrokenPipeError,
            ConnectionResetError,
        ),
        disconnected=(asyncssh.DisconnectError,),
        login_refused=(asyncssh.PermissionDenied,),
        file_already_exists=(asyncssh.SFTPFileAlreadyExists,),
        permission_denied=(asyncssh.SFTPPermissionDenied, asyncssh.SFTPWriteProtect),
        no_space=(asyncssh.SFTPNoSpaceOnFilesystem, asyncssh.SFTPQuotaExceeded),
        other=(asyncssh.Error,),
    )


def _asyncssh_attrs(**values: int | None) -> Any:
    return asyncssh.SFTPAttrs(**values)


def _wire_errors() -> Errors:
    p = packets
    return Errors(
        no_such_file=(p.NoSuchFile, p.NoSuchPath),
        failure=(p.Failure,),
        op_unsupported=(p.OpUnsupported,),
        dir_not_empty=(p.DirNotEmpty,),
        status=(p.StatusError,),
        lost=(p.ConnectionLost, p.NoConnection, BrokenPipeError, ConnectionResetError),
        disconnected=(),
        login_refused=(),
        file_already_exists=(p.FileAlreadyExists,),
        permission_denied=(p.PermissionDenied, p.WriteProtect),
        no_space=(p.NoSpaceOnFilesystem, p.QuotaExceeded),
        other=(),
    )


def _wire_attrs(**values: int | None) -> packets.Attrs:
    return packets.Attrs(**values)


ASYNCSSH = Client("asyncssh", _asyncssh_errors, _asyncssh_attrs)
OPENSSH = Client("openssh", _wire_errors, _wire_attrs)
#: The clients by the name the ``client`` option gives.
CLIENTS = {client.name: client for client in (ASYNCSSH, OPENSSH)}


def errors_of(sftp: Session) -> Errors:
    """Return the errors of the client ``sftp`` belongs to."""
    return (OPENSSH if isinstance(sftp, WireClient) else ASYNCSSH).errors()
