"""Pool the control connections to one FTP server, and retry a call on a fresh one.

A call borrows an idle control connection from a small pool (or opens one)
and gives it back when done, so sequential use keeps reusing one connection
and threads never share one mid-command. A connection idle for a while is
checked with ``NOOP`` before use; a call that cannot connect, finds its
connection broken (the server closed it, a reset) or gets no reply in time
is tried again on a fresh connection, ``max_retries`` times, when it is
idempotent. Every connection is switched to binary mode (``TYPE I``) once,
which ``SIZE`` needs and every transfer uses.
"""

from __future__ import annotations

import codecs
import contextlib
import ftplib
import posixpath
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from stowage.drivers._server import server_address
from stowage.drivers.ftp.options import FTPOptions, Server
from stowage.drivers.ftp.replies import ReplyErrors, broken
from stowage.exceptions import ServiceError, ServiceTimeout, ServiceUnavailable

__all__ = [
    "RECV",
    "Client",
    "ConnectionPool",
    "Features",
    "abort_data",
    "bulk_transfer",
    "finish_data",
]

_T = TypeVar("_T")

#: Bytes asked of a data connection at a time.
RECV = 256 * 1024
#: Idle connections kept for reuse.
_MAX_IDLE = 8
#: A pooled connection idle longer than this (seconds) is checked with NOOP.
_CHECK_AFTER = 15.0


@dataclass
class Features:
    """What the server supports, read once with ``FEAT`` and corrected when it refuses."""

    #: Whether MLST and MLSD work (None: not known yet).
    mlst: bool | None = None
    #: Whether names go as UTF-8 (``OPTS UTF8 ON``).
    utf8: bool = False


class Client(ftplib.FTP):
    """A control connection with the pool's bookkeeping."""

    broken = False
    idle_since = 0.0
    #: The server's features, shared by every connection of the pool.
    features: Features


class _TLSClient(ftplib.FTP_TLS, Client):
    """An FTPS control connection whose data connections resume its TLS session.

    Servers such as vsftpd refuse data connections that do not reuse the
    control connection's session; ftplib does not reuse it on its own.
    """

    protected = False

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        """Open a data connection, wrapped in TLS with the control session."""
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self.protected:
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def bulk_transfer(client: Client, command: str, rest: int | None = None) -> socket.socket:
    """Open the data connection of a ``STOR`` or ``RETR``; the kernel keeps its timeout.

    A socket with a Python timeout polls before each send and receive; a
    blocking one leaves the waiting to the kernel, which moves a large upload
    about a tenth faster here. ``SO_SNDTIMEO`` and ``SO_RCVTIMEO`` keep the
    client's timeout: a call that moves nothing for that long fails with
    ``EAGAIN`` (:class:`BlockingIOError`), translated as a timeout. Only plain
    connections read with ``recv`` and written with ``sendall`` take this:
    TLS would report the limit as a TLS error, and a listing read through a
    file object would take ``EAGAIN`` for its end. Windows takes another
    format for the limit and keeps the Python timeout too.
    """
    conn = client.transfercmd(command, rest)
    seconds = client.timeout
    if isinstance(conn, ssl.SSLSocket) or seconds is None or sys.platform == "win32":
        return conn
    whole = int(seconds)
    limit = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    except OSError:
        return conn
    conn.settimeout(None)
    return conn


def finish_data(conn: socket.socket) -> None:
    """Close a data connection cleanly: TLS close_notify first, where the peer still listens.

    The reply on the control connection, read next, says whether the transfer
    succeeded, so a failed TLS shutdown changes nothing.
    """
    try:
        if isinstance(conn, ssl.SSLSocket):
            with contextlib.suppress(OSError):
                conn.unwrap()
    finally:
        conn.close()


def abort_data(client: Client, conn: socket.socket) -> None:
    """Close a data connection mid-transfer and read the reply the server sends."""
    conn.close()
    try:
        client.getresp()
    except (ftplib.error_temp, ftplib.error_perm):
        pass
    except BaseException:
        client.broken = True
        raise


class ConnectionPool:
    """Lend logged-in control connections to one server's calls, and take them back."""

    def __init__(self, options: FTPOptions, server: Server) -> None:
        self.options = options
        self.server = server
        self._retry = options.retry_policy()
        self._errors = ReplyErrors(server.host, server.password)
        #: The server, without the password, for messages.
        self.address = server_address(
            "ftps" if server.tls else "ftp", server.username, server.host, server.port
        )
        root = server.root_path
        #: The absolute directory of the files (a relative one is known once logged in).
        self.root: str | None = root if root.startswith("/") else None
        self.features = Features()
        self._context: ssl.SSLContext | None = None
        self.idle: list[Client] = []
        self._lock = threading.Lock()

    def errors(self, what: str, *, connecting: bool = False) -> AbstractContextManager[None]:
        """Translate ftplib's and the socket's errors raised in the block."""
        return self._errors.translate(what, connecting=connecting)

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            verify = self.options.verify
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = context
        return self._context

    def _connect(self) -> Client:
        server, timeout, encoding = self.server, self.options.timeout, self.options.encoding
        what = f"connecting to {self.address}"
        with self.errors(what, connecting=True):
            client: Client
            if server.tls:
                client = _TLSClient(context=self._tls_context(), timeout=timeout, encoding=encoding)
            else:
                client = Client(timeout=timeout, encoding=encoding)
            client.features = self.features
            try:
                client.connect(server.host, server.port, timeout=timeout)
                client.login(server.username, server.password)
                if isinstance(client, _TLSClient):
                    client.prot_p()
                    client.protected = True
                client.set_pasv(server.passive)
                if self.features.mlst is None:
                    self._discover(client)
                if self.features.utf8:
                    with contextlib.suppress(ftplib.error_perm):
                        client.sendcmd("OPTS UTF8 ON")
                client.voidcmd("TYPE I")
                if self.root is None:
                    home = client.pwd()
                    self.root = posixpath.normpath(posixpath.join(home, server.root_path))
            except ssl.SSLCertVerificationError as exc:
                # Also a ValueError, which translate() would let through untouched.
                client.close()
                raise ServiceError(
                    f"{what}: the server's TLS certificate failed verification "
                    f"({exc.verify_message}); set 'verify' to a CA bundle that signs it."
                ) from exc
            except BaseException:
                client.close()
                raise
        return client

    def _discover(self, client: Client) -> None:
        """Read the server's features once: MLST/MLSD support and UTF-8 names."""
        try:
            reply = client.sendcmd("FEAT")
        except ftplib.error_perm:
            self.features.mlst = True  # unknown: try it, and fall back if it is refused
            return
        features = {line.strip().split(" ")[0].upper() for line in reply.splitlines()[1:-1]}
        self.features.utf8 = (
            "UTF8" in features and codecs.lookup(self.options.encoding).name == "utf-8"
        )
        self.features.mlst = "MLST" in features

    def _acquire(self) -> Client:
        client = None
        with self._lock:
            if self.idle:
                client = self.idle.pop()
        if client is not None and time.monotonic() - client.idle_since > _CHECK_AFTER:
            try:
                client.voidcmd("NOOP")
            except ftplib.all_errors:
                self.discard(client)
                client = None
        return self._connect() if client is None else client

    def release(self, client: Client) -> None:
        """Give ``client`` back for reuse (or log it out when the pool is full)."""
        if not client.broken:
            client.idle_since = time.monotonic()
            with self._lock:
                if len(self.idle) < _MAX_IDLE:
                    self.idle.append(client)
                    return
            with contextlib.suppress(*ftplib.all_errors):
                client.quit()
        self.discard(client)

    def discard(self, client: Client) -> None:
        """Close ``client`` for good: it is broken, or no longer wanted."""
        client.broken = True
        with contextlib.suppress(OSError):
            client.close()

    def borrow(
        self,
        what: str,
        work: Callable[[Client], _T],
        retryable: Callable[[], bool] | None = None,
    ) -> tuple[_T, Client]:
        """Run ``work`` on a pooled connection; the caller releases the one returned.

        Connecting again is always allowed; ``work`` is run again after its
        connection broke only while ``retryable`` (idempotence) says so.
        """
        # Where the last try failed: None connecting, else whether the connection broke.
        broke: bool | None = None

        def once() -> tuple[_T, Client]:
            nonlocal broke
            broke = None
            client = self._acquire()
            broke = False
            try:
                return work(client), client
            except BaseException as exc:
                if not (client.broken or broken(exc)):
                    self.release(client)
                    raise
                broke = True
                self.discard(client)
                raise

        def failed_in_transit(exc: BaseException) -> bool:
            if broke is None:
                return isinstance(exc, (ServiceUnavailable, ServiceTimeout))
            return broke

        with self.errors(what):
            return self._retry.run(
                once,
                retryable=failed_in_transit,
                idempotent=retryable if retryable is not None else True,
                unsent=lambda exc: broke is None,
            )

    def call(
        self,
        what: str,
        work: Callable[[Client], _T],
        retryable: Callable[[], bool] | None = None,
    ) -> _T:
        """Run ``work`` on a pooled connection, as :meth:`borrow`, and give it back."""
        result, client = self.borrow(what, work, retryable)
        self.release(client)
        return result

    def close(self) -> None:
        """Log out of every idle connection; the pool connects again when used."""
        with self._lock:
            idle, self.idle = self.idle, []
        for client in idle:
            with contextlib.suppress(*ftplib.all_errors):
                client.quit()
            self.discard(client)
