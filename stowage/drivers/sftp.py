"""Store files on an SSH server over SFTP, with asyncssh.

One SSH connection per storage is opened on first use, shared by every
thread and coroutine, and opened again when it breaks: a request that finds
the connection gone, cannot connect or times out is tried again on a new one,
``max_retries`` times (an upload that timed out is not sent again: it may
have landed). The connection lives on a private event loop
thread (:mod:`stowage.drivers._ssh_loop`): sync calls wait for it, async
calls await it without blocking their own loop.

Every write goes to a hidden temporary file in the target's directory and is
then renamed into place, so no reader sees half a file and an interrupted
upload leaves nothing under the name. An atomic create uses SFTP's standard
rename, which refuses a taken name; a replacing write uses OpenSSH's
``posix-rename@openssh.com``. Missing parent directories are created.

Host keys are checked against ``known_hosts`` (default ``~/.ssh/known_hosts``).
A host missing from it is refused unless ``accept_unknown_host_keys`` is set,
in which case its first key is pinned for the life of the storage; a key
differing from a listed one is always refused.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import functools
import itertools
import os
import posixpath
import secrets
import stat
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote

import asyncssh

from stowage.config import option
from stowage.drivers._ssh_loop import LoopThread, loop_thread
from stowage.drivers.base import (
    TEMP_PREFIX,
    URL_SAFE,
    AsyncDownload,
    Capability,
    Download,
    Driver,
    MiB,
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
    IncompleteRead,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    UnsupportedOperation,
)

__all__ = ["SFTPDriver", "SFTPOptions"]

_T = TypeVar("_T")
#: Bytes per read or write call; asyncssh splits it into parallel SFTP requests.
_CHUNK = MiB
#: Read calls kept in flight while the consumer handles the previous chunk.
_READ_AHEAD = 2
#: paramiko ``connect()`` arguments accepted in ``params`` (django-storages' option).
_PARAMS = frozenset(
    {
        "port",
        "username",
        "password",
        "key_filename",
        "passphrase",
        "timeout",
        "allow_agent",
        "look_for_keys",
    }
)
#: asyncssh's ciphers, AES-GCM first: with AES instructions it moves bytes and
#: answers small requests faster than asyncssh's default, ChaCha20-Poly1305.
_CIPHERS = sorted(
    (alg.decode("ascii") for alg in asyncssh.encryption.get_default_encryption_algs()),
    key=lambda alg: not alg.startswith("aes") or "-gcm" not in alg,
)
#: Errors meaning the connection is gone: the request may be retried on a new one.
_LOST: tuple[type[BaseException], ...] = (
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.ConnectionLost,
    asyncssh.ChannelOpenError,
    BrokenPipeError,
    ConnectionResetError,
)
#: Errors after which a request is sent again on a new connection (connecting failed too).
_RETRYABLE: tuple[type[BaseException], ...] = (*_LOST, ServiceUnavailable)
#: Those, and timeouts: retried too, unless the request may have landed.
_RETRIED: tuple[type[BaseException], ...] = (*_RETRYABLE, TimeoutError)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RETRIED)


def _redacted(secrets: Iterable[str], text: str) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


def _redacted_detail(secrets: Iterable[str], exc: BaseException) -> str:
    return _redacted(secrets, str(exc) or type(exc).__name__)


#: What asyncssh's errors become; ``target`` names the server, ``detail`` is redacted.
_ERROR_RULES = (
    Rule(
        (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath), NotFound, "{what} on {target}: {detail}"
    ),
    Rule(asyncssh.SFTPFileAlreadyExists, AlreadyExists, "{what} on {target}: {detail}"),
    Rule(
        (asyncssh.SFTPPermissionDenied, asyncssh.SFTPWriteProtect),
        AccessDenied,
        "{what} on {target}: {detail}",
    ),
    Rule(
        (asyncssh.SFTPNoSpaceOnFilesystem, asyncssh.SFTPQuotaExceeded),
        ServiceError,
        "{what} on {target}: {detail} (no space left on the server)",
    ),
    Rule(
        asyncssh.PermissionDenied,
        AccessDenied,
        "{what}: {target} refused the login; check the username, password or private key",
    ),
    Rule(
        (*_LOST, asyncssh.DisconnectError),
        ServiceUnavailable,
        "{what} on {target}: {detail} (the connection was lost)",
    ),
    Rule((asyncssh.SFTPError, asyncssh.Error), ServiceError, "{what} on {target}: {detail}"),
    Rule(TimeoutError, ServiceTimeout, "{what} on {target}: no answer in time"),
)


@dataclass(frozen=True)
class SFTPOptions(ServerOptions):
    """Options of the SFTP driver (django-storages' names are accepted as aliases)."""

    port: int = option(22, doc="Port of the SSH server.")
    username: str | None = option(None, doc="Login name (defaults to the local user's).")
    password: str | None = option(None, doc="Password of the login.", secret=True)
    private_key: str | None = option(
        None, doc="Client private key: a file path or the key itself (OpenSSH or PEM).", secret=True
    )
    private_key_passphrase: str | None = option(
        None, doc="Passphrase of an encrypted private key.", secret=True
    )
    use_agent: bool = option(
        False, doc="Also offer the SSH agent's keys (SSH_AUTH_SOCK) and the default key files."
    )
    known_hosts: str | None = option(
        None, doc="known_hosts file listing the server's key (default ~/.ssh/known_hosts)."
    )
    accept_unknown_host_keys: bool = option(
        False,
        doc="Trust a server missing from known_hosts on first connection, pinning its key "
        "for the life of the storage. A key differing from a listed one is always refused.",
    )
    root_path: str = option(
        "", doc="Directory on the server holding the files (relative: to the login's home)."
    )
    file_mode: int | None = option(None, doc="Mode of new files (e.g. 0o644).")
    directory_mode: int | None = option(None, doc="Mode of new directories (e.g. 0o755).")
    uid: int | None = option(None, doc="Owner of new files and directories, where permitted.")
    gid: int | None = option(None, doc="Group of new files and directories, where permitted.")
    timeout: float = option(30.0, doc="Seconds allowed to connect and log in, and per request.")
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Times a request is tried again on a new connection after connecting failed, "
        "the connection was lost or a request timed out (an upload only if it was lost "
        "before its first byte was sent), with the pause every network driver uses "
        "(capped exponential backoff with jitter).",
    )
    params: dict[str, Any] = option(
        default_factory=dict,
        doc="django-storages' paramiko connect() arguments (port, username, password, "
        "key_filename, passphrase, timeout, allow_agent, look_for_keys); each fills the "
        "matching option left at its default.",
        secret=True,
    )
    interactive: bool = option(
        False, doc="django-storages' password prompt; stowage never prompts, only False works."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.interactive:
            raise ConfigurationError(
                "Option 'interactive' cannot be True: stowage never prompts for a password; "
                "set 'password' or 'private_key'."
            )
        unknown = set(self.params) - _PARAMS
        if unknown:
            raise ConfigurationError(
                f"Option 'params' has unsupported keys {sorted(unknown)}; "
                f"valid: {sorted(_PARAMS)} (use 'private_key' for a key)."
            )


@dataclass(frozen=True)
class _Login:
    """The effective connection settings: options completed from ``params``."""

    host: str
    port: int
    username: str | None
    password: str | None
    key: str | None
    key_option: str
    passphrase: str | None
    agent: bool
    default_keys: bool
    timeout: float

    @classmethod
    def from_options(cls, o: SFTPOptions) -> _Login:
        p = o.params
        key_option = "private_key"
        key = o.private_key
        if key is None and p.get("key_filename"):
            key_filename = p["key_filename"]
            key = key_filename if isinstance(key_filename, str) else key_filename[0]
            key_option = "params['key_filename']"
        return cls(
            host=o.host,
            port=int(p.get("port", 22)) if o.port == 22 else o.port,
            username=o.username if o.username is not None else p.get("username"),
            password=o.password if o.password is not None else p.get("password"),
            key=key,
            key_option=key_option,
            passphrase=(
                o.private_key_passphrase
                if o.private_key_passphrase is not None
                else p.get("passphrase")
            ),
            agent=o.use_agent or bool(p.get("allow_agent", False)),
            default_keys=bool(p.get("look_for_keys", False)),
            timeout=float(p.get("timeout", o.timeout)) if o.timeout == 30.0 else o.timeout,
        )

    @property
    def target(self) -> str:
        """Name the server and login for messages (no secret in it)."""
        user = f"{self.username}@" if self.username else ""
        return f"sftp://{user}{self.host}:{self.port}"

    def secrets(self) -> list[str]:
        """Return the secret strings that must never appear in a message."""
        values = [self.password, self.passphrase]
        if self.key is not None and _is_key_text(self.key):
            values.append(self.key)
        return [v for v in values if v]


def _is_key_text(value: str) -> bool:
    return "-----BEGIN" in value or "\n" in value


def _time(seconds: int | None, nanoseconds: int | None) -> dt.datetime | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds + (nanoseconds or 0) / 1e9, dt.UTC)


def _is_dir(attrs: asyncssh.SFTPAttrs) -> bool:
    return attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)


def _is_file(attrs: asyncssh.SFTPAttrs) -> bool:
    return attrs.permissions is None or stat.S_ISREG(attrs.permissions)


class _HostKeys:
    """Decide on host keys the known_hosts file does not list for this server."""

    def __init__(self, known: asyncssh.SSHKnownHosts, accept_unknown: bool) -> None:
        self.known = known
        self.accept_unknown = accept_unknown
        #: The key accepted on first use, kept so a later connection must match it.
        self.pinned: asyncssh.SSHKey | None = None
        self.problem: str | None = None

    def client(self) -> asyncssh.SSHClient:
        """Return an asyncssh client object that asks this policy about host keys."""
        policy = self

        class Client(asyncssh.SSHClient):
            def validate_host_public_key(
                self, host: str, addr: str, port: int, key: asyncssh.SSHKey
            ) -> bool:
                return policy.validate(host, addr, port, key)

        return Client()

    def validate(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Return whether ``key`` may stand for ``host`` (it is not in known_hosts)."""
        listed, ca_keys, *_ = self.known.match(host, addr, port)
        if listed or ca_keys:
            self.problem = "does not match the key known_hosts lists for it (refused)"
            return False
        if self.pinned is not None:
            if key == self.pinned:
                return True
            self.problem = "changed since it was first accepted (refused)"
            return False
        if self.accept_unknown:
            return True
        self.problem = (
            "is unknown: add it to known_hosts, or set accept_unknown_host_keys=True "
            "to trust it on first connection"
        )
        return False


class _Link:
    """One SSH connection and its SFTP session, touched only on the loop thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.conn: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None
        self.lock: asyncio.Lock | None = None
        self.host_keys: _HostKeys | None = None

    def usable(self) -> asyncssh.SFTPClient | None:
        """Return the SFTP session if its connection is still open."""
        if self.sftp is not None and self.conn is not None and not self.conn.is_closed():
            return self.sftp
        return None

    def drop(self, sftp: asyncssh.SFTPClient | None = None) -> None:
        """Forget the connection (only if it still carries ``sftp``, when given)."""
        if sftp is not None and sftp is not self.sftp:
            return
        conn, self.conn, self.sftp = self.conn, None, None
        if conn is not None:
            conn.abort()

    @staticmethod
    def abandon(link: _Link, runner: LoopThread) -> None:
        """Close the connection of a driver that was garbage collected."""
        if link.conn is not None and runner.pid == os.getpid() and not runner.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                runner.loop.call_soon_threadsafe(link.drop)


@dataclass
class _Upload:
    """A temporary file being written on one SFTP session."""

    sftp: asyncssh.SFTPClient
    handle: asyncssh.SFTPClientFile
    temp: str
    path: str
    key: str
    open: bool = True


class SFTPDriver(Driver[SFTPOptions]):
    """Move bytes to and from a directory on an SSH server."""

    options_class = SFTPOptions
    claimed_options = frozenset({"base_url"})
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.REAL_DIRECTORIES,
            Capability.PUBLIC_URL,
            Capability.ACCESSED_TIME,
        }
    )
    # Linux paths end at 4096 bytes, and the key lies below root_path.
    max_key_bytes = 3072
    max_part_bytes = 255
    native_async = True

    def __init__(self, options: SFTPOptions) -> None:
        super().__init__(options)
        if not options.host:
            raise ConfigurationError("SFTP storage needs 'host' (OPTIONS or SFTP_STORAGE_HOST).")
        self._retry = options.retry_policy()
        self._login = _Login.from_options(options)
        self._secrets = self._login.secrets()
        # The table holds the secrets, not the driver: no cycle keeps a dropped driver alive.
        self._error_table = ErrorTable(
            *_ERROR_RULES, detail=functools.partial(_redacted_detail, self._secrets)
        )
        root = options.root_path
        self._root = root if root in ("", "/") else root.rstrip("/")
        self._runner: LoopThread | None = None
        self._link = _Link()

    # -- plumbing -----------------------------------------------------------------

    def _loop(self) -> LoopThread:
        runner = self._runner
        if runner is None or runner.pid != os.getpid():
            runner = loop_thread()
            if self._link.pid != os.getpid():
                # A forked child cannot use the parent's connection or loop.
                self._link = _Link()
            self._runner = runner
            weakref.finalize(self, _Link.abandon, self._link, runner)
        return runner

    def _path(self, key: str) -> str:
        if not self._root:
            return key or "."
        if not key:
            return self._root
        return f"{self._root.rstrip('/')}/{key}"

    def _redact(self, text: str) -> str:
        return _redacted(self._secrets, text)

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return self._error_table.translate(what, target=self._login.target)

    def _run(self, what: str, operation: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``operation(sftp, *args)`` on the loop and wait for it."""
        with self._errors(what):
            return self._loop().run(self._attempt(operation, args))

    async def _arun(self, what: str, operation: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``operation(sftp, *args)`` on the loop and await it from another loop."""
        with self._errors(what):
            return await self._loop().run_async(self._attempt(operation, args))

    async def _attempt(self, operation: Callable[..., Awaitable[_T]], args: Sequence[Any]) -> _T:
        connected = False

        async def once() -> _T:
            nonlocal connected
            connected = False
            sftp: asyncssh.SFTPClient | None = None
            try:
                sftp = await self._client()
                connected = True
                async with asyncio.timeout(self._login.timeout):
                    return await operation(sftp, *args)
            except _RETRIED:  # ServiceTimeout too: connecting took too long
                if sftp is not None:
                    self._link.drop(sftp)
                raise

        def unsent(exc: BaseException) -> bool:
            # A lost connection is sent again; a request that timed out on a live
            # connection counts as sent.
            return isinstance(exc, _RETRYABLE) or not connected

        return await self._retry.arun(
            once,
            retryable=_retryable,
            # A whole upload that timed out may have landed: only a lost one is sent again.
            idempotent=operation != self._put_whole,
            unsent=unsent,
        )

    async def _timed(self, awaitable: Awaitable[_T]) -> _T:
        async with asyncio.timeout(self._login.timeout):
            return await awaitable

    async def _client(self) -> asyncssh.SFTPClient:
        link = self._link
        sftp = link.usable()
        if sftp is not None:
            return sftp
        if link.lock is None:
            link.lock = asyncio.Lock()
        async with link.lock:
            sftp = link.usable()
            if sftp is None:
                link.drop()
                conn = await self._connect(link)
                try:
                    sftp = await self._timed(conn.start_sftp_client())
                except BaseException:
                    conn.abort()
                    raise
                link.conn, link.sftp = conn, sftp
            return sftp

    def _client_keys(self) -> list[asyncssh.SSHKey] | None:
        login = self._login
        if login.key is None:
            return None
        try:
            if _is_key_text(login.key):
                return [asyncssh.import_private_key(login.key, login.passphrase)]
            return [asyncssh.read_private_key(os.path.expanduser(login.key), login.passphrase)]
        except (ValueError, OSError) as exc:
            # asyncssh's key errors are ValueErrors; their text holds no key material.
            raise ConfigurationError(
                f"Option {login.key_option!r} could not be loaded: "
                f"{self._redact(str(exc)) or type(exc).__name__}"
            ) from None

    def _known_hosts(self) -> asyncssh.SSHKnownHosts:
        given = self.options.known_hosts
        path = os.path.expanduser(given or "~/.ssh/known_hosts")
        try:
            with open(path, encoding="utf-8") as handle:
                return asyncssh.import_known_hosts(handle.read())
        except FileNotFoundError:
            if given:
                raise ConfigurationError(f"Option 'known_hosts': no file at {given!r}.") from None
            return asyncssh.import_known_hosts("")
        except (ValueError, OSError) as exc:
            raise ConfigurationError(f"Option 'known_hosts' could not be read: {exc}") from None

    async def _connect(self, link: _Link) -> asyncssh.SSHClientConnection:
        login = self._login
        keys = self._client_keys()
        host_keys = _HostKeys(self._known_hosts(), self.options.accept_unknown_host_keys)
        if link.host_keys is not None:
            host_keys.pinned = link.host_keys.pinned
        client_keys: Any = keys
        if keys is None and (login.agent or login.default_keys):
            client_keys = ()
        try:
            conn = await asyncssh.connect(
                login.host,
                login.port,
                config=None,
                username=login.username,
                password=login.password,
                client_keys=client_keys,
                agent_path=() if login.agent else None,
                known_hosts=host_keys.known,
                client_factory=host_keys.client,
                connect_timeout=login.timeout,
                login_timeout=login.timeout,
                keepalive_interval=60,
                encryption_algs=_CIPHERS,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            problem = host_keys.problem or "could not be verified"
            raise AccessDenied(f"The host key of {login.host}:{login.port} {problem}.") from exc
        except TimeoutError as exc:
            raise ServiceTimeout(
                f"Connecting to {login.target} took longer than {login.timeout:g} s."
            ) from exc
        except OSError as exc:
            raise ServiceUnavailable(
                f"Cannot connect to {login.target}: {self._redact(str(exc))}"
            ) from exc
        if host_keys.pinned is None and host_keys.accept_unknown:
            host_keys.pinned = conn.get_server_host_key()
        link.host_keys = host_keys
        return conn

    def _info(self, key: str, attrs: asyncssh.SFTPAttrs) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=attrs.size or 0,
            modified=_time(attrs.mtime, attrs.mtime_ns),
            accessed=_time(attrs.atime, attrs.atime_ns),
        )

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        runner = self._runner
        if runner is None or runner.pid != os.getpid():
            return

        async def drop() -> None:
            self._link.drop()

        runner.run(drop())

    # -- operations on the loop ---------------------------------------------------------

    async def _stat(self, sftp: asyncssh.SFTPClient, path: str) -> asyncssh.SFTPAttrs | None:
        try:
            return await sftp.stat(path)
        except asyncssh.SFTPNoSuchFile:
            return None

    async def _mkdirs(
        self, sftp: asyncssh.SFTPClient, directory: str, *, parents: bool = True
    ) -> None:
        """Create ``directory`` (and its missing parents), with the configured mode."""
        if directory in ("", ".", "/"):
            return
        try:
            await sftp.mkdir(directory)
        except asyncssh.SFTPNoSuchFile:
            if not parents:
                raise
            await self._mkdirs(sftp, posixpath.dirname(directory))
            await self._mkdirs(sftp, directory, parents=False)
            return
        except asyncssh.SFTPError:
            attrs = await self._stat(sftp, directory)
            if attrs is not None and _is_dir(attrs):
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
        sftp: asyncssh.SFTPClient,
        target: str | asyncssh.SFTPClientFile,
        mode: int | None,
    ) -> None:
        # Set explicitly: the server applies its umask to modes given at creation.
        o = self.options
        if mode is None and o.uid is None and o.gid is None:
            return
        attrs = asyncssh.SFTPAttrs(permissions=mode)
        if o.uid is not None or o.gid is not None:
            uid, gid = o.uid, o.gid
            if uid is None or gid is None:
                # SFTP sets owner and group together: keep the one not configured.
                now = await (target.stat() if not isinstance(target, str) else sftp.stat(target))
                uid = now.uid if uid is None else uid
                gid = now.gid if gid is None else gid
            attrs.uid, attrs.gid = uid, gid
        if isinstance(target, str):
            await sftp.setstat(target, attrs)
        else:
            await target.setstat(attrs)

    async def _open_temp(self, sftp: asyncssh.SFTPClient, path: str, key: str) -> _Upload:
        directory = posixpath.dirname(path)
        temp = posixpath.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL
        try:
            handle = await sftp.open(temp, flags, encoding=None)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPFailure):
            # A plain failure may be a file where the directory should be: _mkdirs says so.
            await self._mkdirs(sftp, directory)
            handle = await sftp.open(temp, flags, encoding=None)
        return _Upload(sftp, handle, temp, path, key)

    async def _write(self, upload: _Upload, data: bytes, offset: int) -> None:
        try:
            await self._timed(upload.handle.write(data, offset))
        except asyncssh.SFTPFailure as exc:
            # SFTPv3 has no code for a full disk: OpenSSH reports ENOSPC, EDQUOT
            # and EFBIG as a plain failure, and only on writes.
            raise ServiceError(
                f"writing {upload.key!r} on {self._login.target}: the server could not write "
                f"({exc.reason or 'failure'}); a full disk, a quota or a file size limit is "
                "the usual cause"
            ) from exc

    async def _put_whole(
        self, sftp: asyncssh.SFTPClient, path: str, key: str, data: bytes, if_absent: bool
    ) -> ObjectInfo:
        upload = await self._open_temp(sftp, path, key)
        try:
            if data:
                await self._write(upload, data, 0)
            return await self._finish(upload, if_absent)
        except BaseException:
            await self._discard(upload)
            raise

    async def _finish(self, upload: _Upload, if_absent: bool) -> ObjectInfo:
        async with asyncio.timeout(self._login.timeout):
            sftp, handle = upload.sftp, upload.handle
            await self._set_owner_and_mode(sftp, handle, self.options.file_mode)
            upload.open = False
            # Sent together: the server answers requests on one handle in order.
            attrs, _ = await asyncio.gather(handle.stat(), handle.close())
            if if_absent:
                try:
                    # SFTPv3 rename never replaces: it fails when the name is taken.
                    await sftp.rename(upload.temp, upload.path)
                except asyncssh.SFTPError:
                    if await self._stat(sftp, upload.path) is not None:
                        raise AlreadyExists(f"{upload.key!r} already exists.") from None
                    raise
            else:
                try:
                    await sftp.posix_rename(upload.temp, upload.path)
                except asyncssh.SFTPOpUnsupported:
                    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                        await sftp.remove(upload.path)
                    await sftp.rename(upload.temp, upload.path)
                except asyncssh.SFTPError:
                    if await self._is_directory(sftp, upload.path):
                        raise ServiceError(
                            f"Cannot write {upload.key!r}: a directory of that name is in the way."
                        ) from None
                    raise
        return self._info(upload.key, attrs)

    async def _discard(self, upload: _Upload) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._login.timeout):
                if upload.open:
                    upload.open = False
                    with contextlib.suppress(Exception):
                        await upload.handle.close()
                await upload.sftp.remove(upload.temp)

    async def _open_read(
        self, sftp: asyncssh.SFTPClient, path: str, key: str, start: int, first: int
    ) -> tuple[asyncssh.SFTPClientFile, asyncssh.SFTPAttrs, bytes]:
        handle = await sftp.open(path, asyncssh.FXF_READ, encoding=None)
        try:
            # The size and the first chunk in one round trip.
            stat_task = asyncio.ensure_future(handle.stat())
            read_task = asyncio.ensure_future(handle.read(first, start)) if first else None
            attrs = await stat_task
            if not _is_file(attrs):
                if read_task is not None:
                    await asyncio.gather(read_task, return_exceptions=True)
                raise NotFound(f"{key!r} is a directory, not a file.")
            data = b"" if read_task is None else cast(bytes, await read_task)
        except BaseException:
            with contextlib.suppress(Exception):
                await handle.close()
            raise
        return handle, attrs, data

    async def _read(self, handle: asyncssh.SFTPClientFile, size: int, offset: int) -> bytes:
        return cast(bytes, await self._timed(handle.read(size, offset)))

    async def _close_handle(
        self,
        handle: asyncssh.SFTPClientFile,
        reads: Sequence[concurrent.futures.Future[bytes]] = (),
    ) -> None:
        await asyncio.gather(*(asyncio.wrap_future(read) for read in reads), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._timed(handle.close())

    async def _head(self, sftp: asyncssh.SFTPClient, path: str, key: str) -> ObjectInfo:
        attrs = await sftp.stat(path)
        if not _is_file(attrs):
            raise NotFound(f"{key!r} is a directory, not a file.")
        return self._info(key, attrs)

    async def _exists(self, sftp: asyncssh.SFTPClient, path: str) -> bool:
        return await self._stat(sftp, path) is not None

    async def _is_directory(self, sftp: asyncssh.SFTPClient, path: str) -> bool:
        attrs = await self._stat(sftp, path)
        return attrs is not None and _is_dir(attrs)

    async def _delete(self, sftp: asyncssh.SFTPClient, path: str) -> None:
        try:
            await sftp.remove(path)
            return
        except asyncssh.SFTPNoSuchFile:
            return
        except asyncssh.SFTPError as exc:
            refused = exc
        try:
            attrs = await sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return
        if not _is_dir(attrs):
            raise refused
        try:
            await sftp.rmdir(path)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPDirNotEmpty):
            pass
        except asyncssh.SFTPFailure:
            # SFTPv3 reports a directory that still holds files as a plain
            # failure: it is not a file, so there is nothing to delete.
            pass

    async def _readdir(
        self, sftp: asyncssh.SFTPClient, path: str
    ) -> list[tuple[str, asyncssh.SFTPAttrs]]:
        try:
            names = await sftp.readdir(path)
        except asyncssh.SFTPNoSuchFile:
            return []
        entries = []
        for entry in names:
            name = str(entry.filename)
            if name in (".", "..") or name.startswith(TEMP_PREFIX):
                continue
            attrs = entry.attrs
            if attrs.permissions is not None and stat.S_ISLNK(attrs.permissions):
                target = await self._stat(sftp, posixpath.join(path, name))
                if target is None:
                    continue  # a dangling link
                attrs = target
            if _is_dir(attrs) or _is_file(attrs):
                entries.append((name, attrs))
        entries.sort(key=lambda item: item[0])
        return entries

    async def _remote_copy(self, upload: _Upload, source: str) -> None:
        async with upload.sftp.open(source, asyncssh.FXF_READ, encoding=None) as handle:
            await upload.sftp.remote_copy(handle, upload.handle)

    async def _supports_remote_copy(self, sftp: asyncssh.SFTPClient) -> bool:
        return bool(sftp.supports_remote_copy)

    # -- the driver contract ----------------------------------------------------------------

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
        """Write to a temporary file beside ``key``, then rename it into place."""
        what = f"writing {key!r}"
        # The source is read outside any translation: its errors are its own.
        chunks = _chunks(stream)
        head = [next(chunks, b""), next(chunks, b"")]
        if not head[1]:
            # All the content is in hand: one trip to the loop (retried on a new
            # connection if the old one turns out to be gone).
            return self._run(what, self._put_whole, self._path(key), key, head[0], if_absent)
        upload = self._run(what, self._open_temp, self._path(key), key)
        runner = self._loop()
        pending: concurrent.futures.Future[None] | None = None
        offset = 0
        try:
            for chunk in itertools.chain(head, chunks):
                if pending is not None:
                    with self._errors(what):
                        pending.result()
                # One write in flight while the next chunk is read.
                pending = runner.submit(self._write(upload, chunk, offset))
                offset += len(chunk)
            with self._errors(what):
                if pending is not None:
                    pending.result()
                return runner.run(self._finish(upload, if_absent))
        except BaseException:
            if pending is not None:
                concurrent.futures.wait([pending])
            runner.run(self._discard(upload))
            raise

    async def aput(self, key: str, stream: Readable, **kwargs: Any) -> ObjectInfo:
        """Do :meth:`put` on asyncssh without blocking the event loop."""
        what = f"writing {key!r}"
        if_absent = bool(kwargs.get("if_absent", False))
        chunks = _chunks(stream)
        head = [next(chunks, b""), next(chunks, b"")]
        if not head[1]:
            return await self._arun(what, self._put_whole, self._path(key), key, head[0], if_absent)
        upload = await self._arun(what, self._open_temp, self._path(key), key)
        runner = self._loop()
        pending: asyncio.Future[None] | None = None
        offset = 0
        try:
            for chunk in itertools.chain(head, chunks):
                if pending is not None:
                    with self._errors(what):
                        await pending
                pending = asyncio.wrap_future(runner.submit(self._write(upload, chunk, offset)))
                offset += len(chunk)
            with self._errors(what):
                if pending is not None:
                    await pending
                return await runner.run_async(self._finish(upload, if_absent))
        except BaseException:
            if pending is not None:
                await asyncio.wait([pending])
            await runner.run_async(self._discard(upload))
            raise

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Open the file and stream the range, one chunk read ahead."""
        what = f"reading {key!r}"
        first = _CHUNK if end is None else max(0, min(_CHUNK, end - start))
        handle, attrs, data = self._run(what, self._open_read, self._path(key), key, start, first)
        reader = _RangeReader(
            self, self._info(key, attrs), handle, (start, end), (data, first), what
        )
        return Download(reader.info, reader.chunks(), reader.close)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` on asyncssh without blocking the event loop."""
        what = f"reading {key!r}"
        first = _CHUNK if end is None else max(0, min(_CHUNK, end - start))
        handle, attrs, data = await self._arun(
            what, self._open_read, self._path(key), key, start, first
        )
        reader = _RangeReader(
            self, self._info(key, attrs), handle, (start, end), (data, first), what
        )

        async def close() -> None:
            reader.close()

        return AsyncDownload(reader.info, reader.achunks(), close)

    def head(self, key: str) -> ObjectInfo:
        """Describe the file at ``key``; a directory is not an object."""
        return self._run(f"inspecting {key!r}", self._head, self._path(key), key)

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` without blocking the event loop."""
        return await self._arun(f"inspecting {key!r}", self._head, self._path(key), key)

    def exists(self, key: str) -> bool:
        """Tell whether a file or directory exists at ``key``."""
        return self._run(f"inspecting {key!r}", self._exists, self._path(key))

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        return await self._arun(f"inspecting {key!r}", self._exists, self._path(key))

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory."""
        return self._run(f"inspecting {key!r}", self._is_directory, self._path(key))

    def delete(self, key: str) -> None:
        """Remove the file, or the directory if it is empty; a missing key is fine.

        A directory that still holds files is left alone, as the local driver
        leaves it: it is not a file, so there is nothing to delete.
        """
        self._run(f"deleting {key!r}", self._delete, self._path(key))

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` without blocking the event loop."""
        await self._arun(f"deleting {key!r}", self._delete, self._path(key))

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a directory, one request per directory; a missing one lists nothing."""
        entries = self._run(f"listing {prefix!r}", self._readdir, self._path(prefix))
        base = f"{prefix}/" if prefix else ""
        for name, attrs in entries:
            key = base + name
            if not _is_dir(attrs):
                yield self._info(key, attrs)
            elif recursive:
                yield from self.list(key, recursive=True)
            else:
                yield Prefix(key)

    async def alist(self, prefix: str, *, recursive: bool = False) -> Sequence[ObjectInfo | Prefix]:
        """Do :meth:`list` without blocking the event loop (the whole listing)."""
        entries = await self._arun(f"listing {prefix!r}", self._readdir, self._path(prefix))
        base = f"{prefix}/" if prefix else ""
        found: list[ObjectInfo | Prefix] = []
        for name, attrs in entries:
            key = base + name
            if not _is_dir(attrs):
                found.append(self._info(key, attrs))
            elif recursive:
                found += await self.alist(key, recursive=True)
            else:
                found.append(Prefix(key))
        return found

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy on the server where it offers ``copy-data``, else through this client."""
        if not self._run(f"copying {src!r}", self._supports_remote_copy):
            return super().copy(src, dst)
        what = f"copying {src!r} to {dst!r}"
        upload = self._run(what, self._open_temp, self._path(dst), dst)
        runner = self._loop()
        try:
            with self._errors(what):
                runner.run(self._timed(self._remote_copy(upload, self._path(src))))
                return runner.run(self._finish(upload, False))
        except BaseException:
            runner.run(self._discard(upload))
            raise

    def public_url(self, key: str) -> str:
        """Return ``base_url`` followed by the quoted key."""
        base_url = self.options.base_url
        if base_url is None:
            raise UnsupportedOperation(
                "SFTP storage has no URL for its files: set the 'base_url' option "
                "(or SFTP_BASE_URL) to the address where root_path is served."
            )
        return base_url + quote(key, safe=URL_SAFE)


def _chunks(stream: Readable) -> Iterator[bytes]:
    """Yield ``stream``'s bytes in chunks, until it gives none."""
    while chunk := stream.read(_CHUNK):
        yield chunk


class _RangeReader:
    """Stream one range of an open remote file, keeping reads in flight."""

    def __init__(
        self,
        driver: SFTPDriver,
        info: ObjectInfo,
        handle: asyncssh.SFTPClientFile,
        span: tuple[int, int | None],
        first: tuple[bytes, int],
        what: str,
    ) -> None:
        start, end = span
        data, requested = first
        self.driver = driver
        self.info = info
        self.handle: asyncssh.SFTPClientFile | None = handle
        self.what = what
        self.stop = max(start, info.size if end is None else min(end, info.size))
        # The first chunk came with the size; keep what the range covers of it.
        expected = min(requested, self.stop - start)
        self.first = data[:expected]
        self.first_missing = expected - len(self.first)
        self.next = start + expected
        self.queue: collections.deque[tuple[int, concurrent.futures.Future[bytes]]] = (
            collections.deque()
        )

    def _fill(self) -> None:
        runner = self.driver._loop()
        while self.handle is not None and len(self.queue) < _READ_AHEAD and self.next < self.stop:
            size = min(_CHUNK, self.stop - self.next)
            future = runner.submit(self.driver._read(self.handle, size, self.next))
            self.queue.append((size, future))
            self.next += size

    def _check(self, missing: int) -> None:
        if missing > 0:
            raise IncompleteRead(
                f"{self.what}: the file ended {missing} bytes early (it changed while being read)."
            )

    def chunks(self) -> Iterator[bytes]:
        """Yield the range's bytes in order, reading ahead."""
        try:
            self._check(self.first_missing)
            self._fill()
            if self.first:
                yield self.first
            while self.queue:
                wanted, future = self.queue.popleft()
                with self.driver._errors(self.what):
                    data = future.result()
                self._check(wanted - len(data))
                self._fill()
                yield data
        finally:
            self.close()

    async def achunks(self) -> AsyncIterator[bytes]:
        """Yield the range's bytes in order, reading ahead, without blocking the loop."""
        try:
            self._check(self.first_missing)
            self._fill()
            if self.first:
                yield self.first
            while self.queue:
                wanted, future = self.queue.popleft()
                with self.driver._errors(self.what):
                    data = await asyncio.wrap_future(future)
                self._check(wanted - len(data))
                self._fill()
                yield data
        finally:
            self.close()

    def close(self) -> None:
        """Close the remote file once the reads in flight end, without waiting for it."""
        handle, self.handle = self.handle, None
        # Not cancelled: asyncssh would leave the parallel requests of a
        # cancelled read running with no one to collect their outcome.
        pending = [future for _, future in self.queue]
        self.queue.clear()
        if handle is not None:
            with contextlib.suppress(RuntimeError):
                self.driver._loop().submit(self.driver._close_handle(handle, pending))
