"""Store files on an FTP server, or FTPS (explicit TLS), with the standard library's ftplib.

Connections: a call borrows an idle control connection from a small pool (or
opens one) and gives it back when done, so sequential use keeps reusing one
connection and threads never share one mid-command. A connection idle for a
while is checked with ``NOOP`` before use; a call that cannot connect, finds
its connection broken (the server closed it, a reset) or gets no reply in
time is tried again on a fresh connection, ``max_retries`` times, when it is
idempotent. An upload counts as idempotent until it has read from
its stream. A download holds its connection until it is closed or read to
the end, so close what you open. Every connection is switched to binary
mode (``TYPE I``) once, which ``SIZE`` needs and every transfer uses.

Writes: the bytes go to a hidden temporary name in the target directory
(``.stowage-tmp-…``, never listed), streamed from the source in chunks, and
are then renamed into place with ``RNFR``/``RNTO``: a reader never sees a
partial file. FTP ends an upload by closing its data connection, so a
connection cut mid-way can look complete to the server: the size stored
(``MLST`` or ``SIZE``) is compared with the bytes sent before the rename.
An upload that fails leaves nothing under its name (the temporary file is
deleted; if even that fails it stays hidden). Missing
parent directories are created with ``MKD`` when the server says the
directory is missing. A server that refuses to rename over an existing file
gets the old file deleted first, which leaves a moment with no file at all.

No atomic create: FTP has no "store only if absent" command, so this driver
does not declare ``ATOMIC_CREATE``. The adapter checks a name with
``exists()`` and then calls ``put(if_absent=True)``, which checks again
(``MLST`` or ``SIZE``) just before the rename and raises
:class:`~stowage.exceptions.AlreadyExists` if the name was taken meanwhile,
so the adapter moves on to the next name. Two writers can still pass that
last check together in the one round trip before the rename; the last rename
then wins (50 threads saving one name: 37 to 49 distinct files survived in our runs).

Reads: ``MLST`` (or ``SIZE``) for the size, then ``REST`` and ``RETR`` for a
range; a range that stops before the end of the file closes the data
connection early and reads the server's abort reply. Listings use ``MLSD``;
a server without it is listed with ``LIST`` (Unix or DOS format), and with
``NLST`` plus ``SIZE`` when ``LIST`` gives a format neither of those.

``location`` accepts django-storages' URL form,
``ftp://user:password@host:port/path`` (``ftps://`` for TLS, ``aftp://``
for active mode); its parts fill in the options left at their defaults.
The password never appears in ``repr``, messages or logs.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import ftplib
import functools
import os
import posixpath
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

from stowage.config import option
from stowage.drivers.base import (
    TEMP_PREFIX,
    URL_SAFE,
    Capability,
    Download,
    Driver,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.drivers.errors import ErrorTable, Rule
from stowage.drivers.options import ServerOptions
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
    UnsupportedOperation,
)

__all__ = ["TEMP_PREFIX", "FTPDriver", "FTPOptions"]

_T = TypeVar("_T")

_CHUNK = 256 * 1024
_RECV = 256 * 1024
#: Idle connections kept for reuse.
_MAX_IDLE = 8
#: A pooled connection idle longer than this (seconds) is checked with NOOP.
_CHECK_AFTER = 15.0
#: Replies meaning "this command is not implemented".
_UNKNOWN_COMMAND = ("500", "502", "504")
#: Replies meaning "no such file or directory" (pyftpdlib answers MLSD of one with 501).
_MISSING = ("550", "501")

_UNIX_LINE = re.compile(
    r"^(?P<kind>[-dlbcps])\S{9}\S*\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)$"
)
_DOS_LINE = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}(?:[AP]M)?\s+(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)$"
)


@dataclass(frozen=True)
class FTPOptions(ServerOptions):
    """Options of the FTP driver (django-storages' ``location`` URL is accepted too)."""

    port: int = option(21, doc="Port of the server.")
    username: str = option("", doc="User to log in as (empty: anonymous).")
    password: str = option("", doc="Password of ``username``.", secret=True)
    tls: bool = option(False, doc="Use explicit FTPS (AUTH TLS) with a protected data channel.")
    verify: bool | str = option(
        True, doc="Verify the server's TLS certificate: True, False, or a CA bundle path."
    )
    passive: bool = option(True, doc="Use passive mode (the client opens data connections).")
    root_path: str = option(
        "", doc="Directory holding the files: absolute, or relative to the login directory."
    )
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Times a call is tried again on a new connection after connecting failed, the "
        "connection broke or a reply timed out (an upload only before it read its source), "
        "with the pause every network driver uses (capped exponential backoff with jitter).",
    )
    encoding: str = option("utf-8", doc="Encoding of names on the control connection.")
    location: str = option(
        "",
        doc="django-storages' 'ftp://user:password@host:port/path' (ftps:// for TLS, "
        "aftp:// for active mode), or a directory below root_path.",
        secret=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigurationError(
                f"Option 'encoding' names no codec: {self.encoding!r}."
            ) from None
        if isinstance(self.verify, str) and not os.path.isfile(self.verify):
            raise ConfigurationError(f"Option 'verify' names no file: {self.verify!r}.")


@dataclass(frozen=True)
class _Server:
    """Where and how to connect, after the ``location`` URL is applied."""

    host: str
    port: int
    username: str
    password: str
    tls: bool
    passive: bool
    root_path: str


def _server(options: FTPOptions) -> _Server:
    host, port, username, password = options.host, options.port, options.username, options.password
    tls, passive, root_path = options.tls, options.passive, options.root_path
    location = options.location
    if "://" in location:
        # The URL holds the password: no message below may quote it.
        try:
            url = urlsplit(location)
            url_port = url.port
        except ValueError:
            raise ConfigurationError("Option 'location' is not a valid FTP URL.") from None
        if url.scheme not in ("ftp", "ftps", "aftp") or not url.hostname:
            raise ConfigurationError(
                "Option 'location' must look like ftp://user:password@host:port/path "
                "(schemes ftp, ftps, aftp)."
            )
        host = host or url.hostname
        port = url_port if port == 21 and url_port else port
        username = username or unquote(url.username or "")
        password = password or unquote(url.password or "")
        tls = tls or url.scheme == "ftps"
        passive = passive and url.scheme != "aftp"
        path = unquote(url.path).lstrip("/")
        root_path = posixpath.join(root_path, path) if root_path else path
    elif location:
        root_path = posixpath.join(root_path, location) if root_path else location
    if not host:
        raise ConfigurationError(
            "FTP storage needs 'host' (OPTIONS), or 'location' as "
            "ftp://user:password@host:port/path (OPTIONS or FTP_STORAGE_LOCATION)."
        )
    return _Server(host, port, username, password, tls, passive, root_path.rstrip("/"))


class _SourceFailed(StowageError):
    """Carry an exception raised by the content being uploaded, to re-raise it as it is."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _Source:
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
            raise _SourceFailed(exc) from exc

    def untouched(self) -> bool:
        """Tell whether nothing was read yet (the upload may be retried)."""
        return not self.touched


class _Client(ftplib.FTP):
    """A control connection with the pool's bookkeeping."""

    broken = False
    idle_since = 0.0


class _TLSClient(ftplib.FTP_TLS, _Client):
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


@dataclass(frozen=True, slots=True)
class _Entry:
    """One name in a directory listing."""

    name: str
    is_dir: bool
    size: int = 0
    modified: dt.datetime | None = None


def _reply_code(exc: BaseException) -> str:
    return str(exc)[:3]


def _status(exc: BaseException) -> int | None:
    code = _reply_code(exc)
    return int(code) if isinstance(exc, ftplib.Error) and code.isdigit() else None


def _scrubbed(password: str, exc: BaseException) -> str:
    text = str(exc).strip()
    return text.replace(password, "***") if password else text


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
    Rule(socket.gaierror, ServiceUnavailable, "{what}: cannot resolve {host!r} ({detail})."),
    Rule(ConnectionRefusedError, ServiceUnavailable, "{what}: connection refused."),
)


def _parse_time(value: str) -> dt.datetime | None:
    """Parse an RFC 3659 time (``YYYYMMDDHHMMSS[.fff]``, UTC)."""
    whole, _, fraction = value.strip().partition(".")
    try:
        moment = dt.datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if fraction.isdigit():
        moment += dt.timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


def _parse_facts(text: str) -> dict[str, str]:
    facts = {}
    for fact in text.split(";"):
        name, sep, value = fact.partition("=")
        if sep:
            facts[name.strip().lower()] = value
    return facts


def _entry_from_facts(name: str, facts_text: str) -> _Entry:
    facts = _parse_facts(facts_text)
    size = facts.get("size", "0")
    return _Entry(
        name=name,
        is_dir=facts.get("type", "").lower() in ("dir", "cdir", "pdir"),
        size=int(size) if size.isdigit() else 0,
        modified=_parse_time(facts.get("modify", "")),
    )


def _entry_from_mlsd(line: str) -> _Entry | None:
    facts_text, _, name = line.partition(" ")
    kind = _parse_facts(facts_text).get("type", "").lower()
    if kind in ("cdir", "pdir") or name in ("", ".", ".."):
        return None
    return _entry_from_facts(name, facts_text)


def _entry_from_list(line: str) -> _Entry | None:
    """Parse one LIST line (Unix or DOS format); raise ValueError for another format."""
    if match := _UNIX_LINE.match(line):
        name = match["name"]
        if match["kind"] == "l":
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            return None
        return _Entry(name=name, is_dir=match["kind"] == "d", size=int(match["size"]))
    if match := _DOS_LINE.match(line):
        name = match["name"]
        if name in (".", ".."):
            return None
        size = match["size"]
        return _Entry(name=name, is_dir=bool(match["dir"]), size=int(size) if size else 0)
    if line.startswith("total "):
        return None
    raise ValueError(f"unrecognised LIST line {line[:60]!r}")


def _broken(exc: BaseException) -> bool:
    """Tell whether ``exc`` leaves the control connection unusable."""
    if isinstance(exc, ftplib.error_temp):
        return _reply_code(exc) == "421"
    return isinstance(exc, (EOFError, OSError, ftplib.error_reply, ftplib.error_proto))


def _finish_data(conn: socket.socket) -> None:
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


class FTPDriver(Driver[FTPOptions]):
    """Keep each key as a file below ``root_path`` on one FTP server."""

    options_class = FTPOptions
    claimed_options = frozenset({"base_url", "location"})
    capabilities = frozenset({Capability.PUBLIC_URL, Capability.REAL_DIRECTORIES})
    max_key_bytes = 4096
    max_part_bytes = 255

    def __init__(self, options: FTPOptions) -> None:
        super().__init__(options)
        self._retry = options.retry_policy()
        self._server = _server(options)
        # The tables hold the password to scrub, not the driver (no reference cycle).
        detail = functools.partial(_scrubbed, self._server.password)
        self._call_errors = ErrorTable(*_ERROR_RULES, status=_status, detail=detail)
        self._connect_errors = self._call_errors.extend(
            Rule(ftplib.error_perm, AccessDenied, _REFUSED_LOGIN),
        )
        # "Is a directory" / "Not a directory" on a write: a name in the way, not a missing one.
        self._write_errors = self._call_errors.extend(
            Rule(
                _directory_in_the_way,
                ServiceError,
                "{what}: a file and a directory collide ({detail}).",
            ),
        )
        scheme = "ftps" if self._server.tls else "ftp"
        user = f"{self._server.username}@" if self._server.username else ""
        #: The server, without the password, for messages.
        self.address = f"{scheme}://{user}{self._server.host}:{self._server.port}"
        root = self._server.root_path
        self._root: str | None = root if root.startswith("/") else None
        self._mlst: bool | None = None
        self._utf8 = False
        self._context: ssl.SSLContext | None = None
        self._idle: list[_Client] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}/{self._server.root_path}>"

    # -- connections --------------------------------------------------------------

    def _errors(self, what: str, *, connecting: bool = False) -> AbstractContextManager[None]:
        """Translate ftplib's and the socket's errors raised in the block."""
        if connecting:
            table = self._connect_errors
        elif what.startswith("writing"):
            table = self._write_errors
        else:
            table = self._call_errors
        return table.translate(what, host=self._server.host)

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            verify = self.options.verify
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = context
        return self._context

    def _connect(self) -> _Client:
        server = self._server
        what = f"connecting to {self.address}"
        with self._errors(what, connecting=True):
            client: _Client
            if server.tls:
                client = _TLSClient(
                    context=self._tls_context(),
                    timeout=self.options.timeout,
                    encoding=self.options.encoding,
                )
            else:
                client = _Client(timeout=self.options.timeout, encoding=self.options.encoding)
            try:
                client.connect(server.host, server.port, timeout=self.options.timeout)
                client.login(server.username, server.password)
                if isinstance(client, _TLSClient):
                    client.prot_p()
                    client.protected = True
                client.set_pasv(server.passive)
                if self._mlst is None:
                    self._discover(client)
                if self._utf8:
                    with contextlib.suppress(ftplib.error_perm):
                        client.sendcmd("OPTS UTF8 ON")
                client.voidcmd("TYPE I")
                if self._root is None:
                    home = client.pwd()
                    self._root = posixpath.normpath(posixpath.join(home, server.root_path))
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

    def _discover(self, client: _Client) -> None:
        """Read the server's features once: MLST/MLSD support and UTF-8 names."""
        try:
            reply = client.sendcmd("FEAT")
        except ftplib.error_perm:
            self._mlst = True  # unknown: try it, and fall back if it is refused
            return
        features = {line.strip().split(" ")[0].upper() for line in reply.splitlines()[1:-1]}
        self._utf8 = "UTF8" in features and codecs.lookup(self.options.encoding).name == "utf-8"
        self._mlst = "MLST" in features

    def _acquire(self) -> _Client:
        client = None
        with self._lock:
            if self._idle:
                client = self._idle.pop()
        if client is not None and time.monotonic() - client.idle_since > _CHECK_AFTER:
            try:
                client.voidcmd("NOOP")
            except ftplib.all_errors:
                self._discard(client)
                client = None
        return self._connect() if client is None else client

    def _release(self, client: _Client) -> None:
        if not client.broken:
            client.idle_since = time.monotonic()
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(client)
                    return
            with contextlib.suppress(*ftplib.all_errors):
                client.quit()
        self._discard(client)

    def _discard(self, client: _Client) -> None:
        client.broken = True
        with contextlib.suppress(OSError):
            client.close()

    def _borrow(
        self,
        what: str,
        work: Callable[[_Client], _T],
        retryable: Callable[[], bool] | None = None,
    ) -> tuple[_T, _Client]:
        """Run ``work`` on a pooled connection; the caller releases the one returned.

        Connecting again is always allowed; ``work`` is run again after its
        connection broke only while ``retryable`` (idempotence) says so.
        """
        # Where the last try failed: None connecting, else whether the connection broke.
        broke: bool | None = None

        def once() -> tuple[_T, _Client]:
            nonlocal broke
            broke = None
            client = self._acquire()
            broke = False
            try:
                return work(client), client
            except BaseException as exc:
                if not (client.broken or _broken(exc)):
                    self._release(client)
                    raise
                broke = True
                self._discard(client)
                raise

        def failed_in_transit(exc: BaseException) -> bool:
            if broke is None:
                return isinstance(exc, (ServiceUnavailable, ServiceTimeout))
            return broke

        with self._errors(what):
            return self._retry.run(
                once,
                retryable=failed_in_transit,
                idempotent=retryable if retryable is not None else True,
                unsent=lambda exc: broke is None,
            )

    def _call(
        self,
        what: str,
        work: Callable[[_Client], _T],
        retryable: Callable[[], bool] | None = None,
    ) -> _T:
        result, client = self._borrow(what, work, retryable)
        self._release(client)
        return result

    def close(self) -> None:
        """Log out of every idle connection; the driver reconnects when used again."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(*ftplib.all_errors):
                client.quit()
            self._discard(client)

    # -- paths and lookups -------------------------------------------------------

    def _path(self, key: str) -> str:
        root = self._root
        assert root is not None, "the root is known once connected"
        if not key:
            return root
        return f"{root.rstrip('/')}/{key}"

    def _stat(self, client: _Client, path: str) -> _Entry | None:
        """Describe ``path`` (a file or a directory) or return None if it is absent."""
        if self._mlst:
            try:
                reply = client.sendcmd(f"MLST {path}")
            except ftplib.error_perm as exc:
                code = _reply_code(exc)
                if code in _UNKNOWN_COMMAND:
                    self._mlst = False
                    return self._stat(client, path)
                if code in _MISSING:
                    return None
                raise
            for line in reply.splitlines()[1:]:
                if line.startswith(" "):
                    return _entry_from_facts(posixpath.basename(path), line[1:].partition(" ")[0])
            raise ftplib.error_proto(f"MLST answered no facts for {path!r}")
        try:
            size = client.size(path)
        except ftplib.error_perm as exc:
            if _reply_code(exc) not in _MISSING:
                raise
        else:
            if size is not None:
                return _Entry(posixpath.basename(path), is_dir=False, size=size)
        try:
            client.cwd(path)
        except ftplib.error_perm as exc:
            if _reply_code(exc) in _MISSING:
                return None
            raise
        return _Entry(posixpath.basename(path), is_dir=True)

    def _file_info(self, client: _Client, key: str, *, modified: bool) -> ObjectInfo:
        path = self._path(key)
        entry = self._stat(client, path)
        if entry is None:
            raise NotFound(f"{key!r} does not exist.")
        if entry.is_dir:
            raise NotFound(f"{key!r} is a directory, not a file.")
        when = entry.modified
        if when is None and modified:
            with contextlib.suppress(ftplib.error_perm):
                when = _parse_time(client.sendcmd(f"MDTM {path}")[4:])
        return ObjectInfo(key=key, size=entry.size, modified=when)

    def head(self, key: str) -> ObjectInfo:
        """Describe the file at ``key`` (``MLST``, else ``SIZE`` and ``MDTM``)."""
        return self._call(f"inspecting {key!r}", lambda c: self._file_info(c, key, modified=True))

    def exists(self, key: str) -> bool:
        """Tell whether a file or a directory exists at ``key``."""
        return (
            self._call(f"inspecting {key!r}", lambda c: self._stat(c, self._path(key))) is not None
        )

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory."""
        entry = self._call(f"inspecting {key!r}", lambda c: self._stat(c, self._path(key)))
        return entry is not None and entry.is_dir

    # -- reading -----------------------------------------------------------------

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` from ``start`` (``REST``) up to ``end`` with ``RETR``."""
        what = f"reading {key!r}"

        def open_transfer(client: _Client) -> tuple[ObjectInfo, socket.socket | None, int]:
            info = self._file_info(client, key, modified=False)
            stop = info.size if end is None else min(end, info.size)
            if start >= stop:
                return info, None, stop
            conn = client.transfercmd(f"RETR {self._path(key)}", start or None)
            return info, conn, stop

        (info, conn, stop), client = self._borrow(what, open_transfer)
        if conn is None:
            self._release(client)
            return Download(info, iter(()))
        transfer = _Retrieval(self, client, conn, what, stop - start, to_end=stop == info.size)
        return Download(info, transfer, transfer.close)

    # -- listing -----------------------------------------------------------------

    def _read_lines(self, client: _Client, command: str) -> list[str]:
        conn = client.transfercmd(command)
        chunks = []
        try:
            while data := conn.recv(_RECV):
                chunks.append(data)
        finally:
            _finish_data(conn)
        client.voidresp()
        text = b"".join(chunks).decode(self.options.encoding, "replace")
        return [line for line in text.splitlines() if line.strip()]

    def _listing(self, client: _Client, path: str) -> list[_Entry]:
        if self._mlst:
            try:
                lines = self._read_lines(client, f"MLSD {path}")
            except ftplib.error_perm as exc:
                code = _reply_code(exc)
                if code in _MISSING:
                    return []
                if code not in _UNKNOWN_COMMAND:
                    raise
                self._mlst = False
            else:
                return [e for e in map(_entry_from_mlsd, lines) if e is not None]
        # Without MLSD: change into the directory so LIST and NLST take no
        # argument (no option parsing of names, no listing of a file).
        try:
            client.cwd(path)
        except ftplib.error_perm as exc:
            if _reply_code(exc) in _MISSING:
                return []
            raise
        try:
            return [e for e in map(_entry_from_list, self._read_lines(client, "LIST")) if e]
        except ValueError:
            pass
        entries = []
        for line in self._read_lines(client, "NLST"):
            name = posixpath.basename(line.rstrip("/"))
            if name in (".", ".."):
                continue
            entry = self._stat(client, f"{path.rstrip('/')}/{name}")
            if entry is not None:
                entries.append(_Entry(name, entry.is_dir, entry.size, entry.modified))
        return entries

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a directory (``MLSD``, else ``LIST``/``NLST``); a missing one lists nothing."""
        entries = self._call(f"listing {prefix!r}", lambda c: self._listing(c, self._path(prefix)))
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

    # -- writing -----------------------------------------------------------------

    def _make_dirs(self, client: _Client, directory: str) -> None:
        """Create ``directory`` and its parents, tolerating those that exist."""
        current = ""
        for part in directory.strip("/").split("/"):
            current = f"{current}/{part}" if current or directory.startswith("/") else part
            with contextlib.suppress(ftplib.error_perm):
                client.mkd(current)

    def _abort_data(self, client: _Client, conn: socket.socket) -> None:
        """Close a data connection mid-transfer and read the reply the server sends."""
        conn.close()
        try:
            client.getresp()
        except (ftplib.error_temp, ftplib.error_perm):
            pass
        except BaseException:
            client.broken = True
            raise

    def _store(self, client: _Client, temp: str, source: _Source) -> int:
        """Upload ``source`` to ``temp`` with STOR; on failure leave no ``temp`` behind."""
        try:
            conn = client.transfercmd(f"STOR {temp}")
        except ftplib.error_perm as exc:
            if _reply_code(exc) not in _MISSING:
                raise
            self._make_dirs(client, posixpath.dirname(temp))
            conn = client.transfercmd(f"STOR {temp}")
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
                self._abort_data(client, conn)
                raise
            _finish_data(conn)
            client.voidresp()
            # FTP marks the end of an upload by closing the data connection, so
            # a connection cut mid-way looks complete to the server: compare.
            stored = self._stored_size(client, temp)
            if stored is not None and stored != sent:
                raise ServiceError(
                    f"the server stored {stored} of the {sent} bytes sent; the upload was cut."
                )
        except BaseException:
            self._remove_quietly(client, temp)
            raise
        return sent

    def _stored_size(self, client: _Client, path: str) -> int | None:
        """Return the size of the file at ``path``, or None if the server cannot tell."""
        try:
            entry = self._stat(client, path)
        except ftplib.error_perm as exc:
            if _reply_code(exc) in _UNKNOWN_COMMAND:
                return None
            raise
        if entry is None:
            raise ftplib.error_perm(f"550 {path!r} vanished after its upload.")
        return None if entry.is_dir else entry.size

    def _remove_quietly(self, client: _Client, path: str) -> None:
        if client.broken:
            return
        try:
            client.delete(path)
        except ftplib.error_perm:
            pass
        except BaseException:
            client.broken = True

    def _rename(self, client: _Client, temp: str, path: str, key: str, *, if_absent: bool) -> None:
        try:
            client.rename(temp, path)
        except ftplib.error_perm:
            # Some servers (Windows ones) refuse to rename over a file.
            target = self._stat(client, path)
            if target is None or target.is_dir:
                raise
            if if_absent:
                raise AlreadyExists(f"{key!r} already exists.") from None
            client.delete(path)
            client.rename(temp, path)

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
        source = _Source(stream)
        temp_name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"

        def upload(client: _Client) -> ObjectInfo:
            path = self._path(key)
            temp = posixpath.join(posixpath.dirname(path), temp_name)
            sent = self._store(client, temp, source)
            try:
                if if_absent and self._stat(client, path) is not None:
                    raise AlreadyExists(f"{key!r} already exists.")
                self._rename(client, temp, path, key, if_absent=if_absent)
            except BaseException:
                self._remove_quietly(client, temp)
                raise
            return ObjectInfo(key=key, size=sent)

        try:
            return self._call(f"writing {key!r}", upload, source.untouched)
        except _SourceFailed as failed:
            original = failed.original
        except ServiceError:
            # The connection broke mid-upload: remove the hidden leftover if we can.
            if source.touched:
                self._cleanup(key, temp_name)
            raise
        raise original

    def _cleanup(self, key: str, temp_name: str) -> None:
        def remove(client: _Client) -> None:
            self._remove_quietly(
                client, posixpath.join(posixpath.dirname(self._path(key)), temp_name)
            )

        with contextlib.suppress(StowageError):
            self._call(f"cleaning up after {key!r}", remove)

    def delete(self, key: str) -> None:
        """Delete the file, or the directory if it is empty; a missing key is silent."""

        def remove(client: _Client) -> None:
            path = self._path(key)
            try:
                client.delete(path)
                return
            except ftplib.error_perm as exc:
                if _reply_code(exc) not in _MISSING:
                    raise
                failure = exc
            entry = self._stat(client, path)
            if entry is None:
                return
            if not entry.is_dir:
                raise failure
            with contextlib.suppress(ftplib.error_perm):
                client.rmd(path)  # a directory still holding files stays

        self._call(f"deleting {key!r}", remove)

    # -- URLs --------------------------------------------------------------------

    def public_url(self, key: str) -> str:
        """Return ``base_url`` joined with the quoted key."""
        if self.options.base_url is None:
            raise UnsupportedOperation(
                "The ftp backend has no URL for files: set its 'base_url' option to the "
                "HTTP address that serves them."
            )
        return self.options.base_url + quote(key, safe=URL_SAFE)


class _Retrieval:
    """Iterate the bytes of one RETR and give its connection back when done."""

    def __init__(
        self,
        driver: FTPDriver,
        client: _Client,
        conn: socket.socket,
        what: str,
        length: int,
        *,
        to_end: bool,
    ) -> None:
        self._driver = driver
        self._client: _Client | None = client
        self._conn = conn
        self._what = what
        self._remaining = length
        self._to_end = to_end

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        client = self._client
        if client is None:
            raise StopIteration
        if self._remaining <= 0 and not self._to_end:
            self.close()
            raise StopIteration
        want = _RECV if self._to_end else min(_RECV, self._remaining)
        broken = False
        try:
            with self._driver._errors(self._what):
                try:
                    data = self._conn.recv(want)
                except ConnectionResetError:
                    # The data connection broke mid-transfer: end this stream
                    # here; the reader sees the bytes missing and resumes (REST).
                    data, broken = b"", True
                if not data and not broken:
                    self._client = None
                    _finish_data(self._conn)
                    client.voidresp()
                    self._driver._release(client)
        except BaseException:
            broken = True
            raise
        finally:
            if broken:
                self._client = None
                self._conn.close()
                self._driver._discard(client)
        if not data:
            raise StopIteration
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        """Abort the transfer if it is still running and release the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            self._driver._abort_data(client, self._conn)
        except BaseException:
            self._driver._discard(client)
            return
        self._driver._release(client)
