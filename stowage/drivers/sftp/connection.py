"""Keep one SSH connection per storage, and run requests on it with retries.

One SSH connection per storage is opened on first use, shared by every
thread and coroutine, and opened again when it breaks: a request that finds
the connection gone, cannot connect or times out is tried again on a new one,
``max_retries`` times (an upload that timed out is not sent again: it may
have landed). The connection lives on a private event loop
(:mod:`stowage.drivers._ssh_loop`): a sync call runs that loop on its own
thread while it waits, async calls await it without blocking their own loop.
With ``client="openssh"`` a blocking check of one name skips the loop
altogether when it can (:meth:`Connection.stat`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from stowage.drivers._deadline import within
from stowage.drivers._server import redact
from stowage.drivers._ssh_loop import SharedLoop, shared_loop
from stowage.drivers.errors import ErrorTable
from stowage.drivers.sftp import paths
from stowage.drivers.sftp.clients import CLIENTS, OPENSSH, Attributes
from stowage.drivers.sftp.host_keys import HostKeys, read_known_hosts
from stowage.drivers.sftp.openssh import OpenSSH
from stowage.drivers.sftp.options import Login, SFTPOptions, is_key_text
from stowage.drivers.sftp.process import NotNow
from stowage.exceptions import (
    AccessDenied,
    ConfigurationError,
    ServiceTimeout,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    import asyncssh

    from stowage.drivers.sftp.clients import Session
    from stowage.drivers.sftp.wire import WireClient
else:
    from stowage.drivers.sftp._asyncssh import asyncssh

__all__ = ["Connection", "Link"]

_T = TypeVar("_T")


@functools.cache
def _ciphers() -> list[str]:
    """Return asyncssh's ciphers, AES-GCM first.

    With AES instructions AES-GCM moves bytes and answers small requests
    faster than asyncssh's default, ChaCha20-Poly1305.
    """
    return sorted(
        (alg.decode("ascii") for alg in asyncssh.encryption.get_default_encryption_algs()),
        key=lambda alg: not alg.startswith("aes") or "-gcm" not in alg,
    )


def _detail(secrets: Sequence[str], exc: BaseException) -> str:
    return redact(str(exc) or type(exc).__name__, secrets)


class Link:
    """One SSH connection and its SFTP session, touched only from the shared loop."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        #: The SSH connection: asyncssh's, or the wire client, which is its own.
        self.conn: asyncssh.SSHClientConnection | WireClient | None = None
        self.sftp: Session | None = None
        self.lock: asyncio.Lock | None = None
        self.host_keys: HostKeys | None = None

    def usable(self) -> Session | None:
        """Return the SFTP session if its connection is still open."""
        if self.sftp is not None and self.conn is not None and not self.conn.is_closed():
            return self.sftp
        return None

    def drop(self, sftp: Session | None = None) -> None:
        """Forget the connection (only if it still carries ``sftp``, when given)."""
        if sftp is not None and sftp is not self.sftp:
            return
        conn, self.conn, self.sftp = self.conn, None, None
        if conn is not None:
            conn.abort()

    @staticmethod
    def abandon(link: Link, runner: SharedLoop) -> None:
        """Close the connection of a driver that was garbage collected."""
        if link.conn is not None and runner.pid == os.getpid() and not runner.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                runner.loop.call_soon_threadsafe(link.drop)


class Connection:
    """Run requests of one driver on its SSH connection, connecting again when it breaks."""

    def __init__(self, options: SFTPOptions) -> None:
        self.options = options
        self.login = Login.from_options(options)
        #: The SFTP client library the ``client`` option chose.
        self.client = CLIENTS[options.client]
        self.secrets = self.login.secrets()
        #: The server and login, for messages (formatted once: every request's block names it).
        self.target = self.login.target
        self._retry = options.retry_policy()
        # The table holds the secrets, not the connection: no cycle keeps a dropped one alive.
        self._error_table: ErrorTable | None = None
        self._runner: SharedLoop | None = None
        self._launcher: OpenSSH | None = None
        self.link = Link()

    def loop(self) -> SharedLoop:
        """Return the event loop the connection lives on (a new one in a forked child)."""
        runner = self._runner
        if runner is None or runner.pid != os.getpid():
            runner = shared_loop()
            if self.link.pid != os.getpid():
                # A forked child cannot use the parent's connection or loop.
                self.link = Link()
            self._runner = runner
            weakref.finalize(self, Link.abandon, self.link, runner)
        return runner

    def errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Translate the client's errors raised in the block, naming the server."""
        table = self._error_table
        if table is None:
            # Made at the first call: asyncssh's errors are not imported before.
            detail = functools.partial(_detail, self.secrets)
            table = self._error_table = ErrorTable(*self.client.rules, detail=detail)
        return table.translate(what, target=self.target)

    def run(
        self,
        what: str,
        operation: Callable[..., Awaitable[_T]],
        *args: Any,
        idempotent: bool = True,
    ) -> _T:
        """Run ``operation(sftp, *args)`` on the loop and wait for it.

        An operation that is not ``idempotent`` is sent again only when the
        connection was lost, never after a timeout: it may have landed.
        """
        with self.errors(what):
            return self.loop().run(self._attempt(operation, args, idempotent))

    async def arun(
        self,
        what: str,
        operation: Callable[..., Awaitable[_T]],
        *args: Any,
        idempotent: bool = True,
    ) -> _T:
        """Run ``operation(sftp, *args)`` on the loop and await it from another loop."""
        with self.errors(what):
            return await self.loop().run_async(self._attempt(operation, args, idempotent))

    def stat(self, what: str, path: str) -> Attributes | None:
        """Return the attributes of ``path`` (links followed), or None if nothing is there.

        With ``client='openssh'`` the request goes out on the calling thread
        while no other caller runs the loop (:meth:`_stat_now`); otherwise,
        and when that cannot be done, it runs as :meth:`run` does.
        """
        if self.client is OPENSSH:
            with self.loop().holding() as held:
                sftp = self.link.usable() if held else None
                if sftp is not None:
                    with contextlib.suppress(NotNow):
                        return self._stat_now(what, sftp, path)
        return self.run(what, paths.stat_or_none, path)

    def _stat_now(self, what: str, sftp: WireClient, path: str) -> Attributes | None:
        # One try: a lost connection or a timeout drops the connection and leaves
        # the request to run(), which connects again and retries as it does.
        client = self.client
        try:
            return sftp.stat_now(path, self.login.timeout)
        except NotNow:
            raise
        except client.errors().no_such_file:
            return None
        except client.retried as exc:  # what the loop's path retries: lost, timed out
            self.link.drop(sftp)
            raise NotNow("the connection was lost") from exc
        except Exception:
            with self.errors(what):
                raise

    def attempt(
        self, operation: Callable[..., Awaitable[_T]], *args: Any, idempotent: bool = True
    ) -> Coroutine[Any, Any, _T]:
        """Return the coroutine that runs ``operation(sftp, *args)`` with retries, on the loop."""
        return self._attempt(operation, args, idempotent)

    async def _attempt(
        self, operation: Callable[..., Awaitable[_T]], args: Sequence[Any], idempotent: bool
    ) -> _T:
        connected = False
        client = self.client

        async def once() -> _T:
            nonlocal connected
            connected = False
            sftp: Session | None = None
            try:
                sftp = self.link.usable()
                if sftp is None:
                    sftp = await self._client()
                connected = True
                return await within(self.login.timeout, operation(sftp, *args))
            except client.retried:  # ServiceTimeout too: connecting took too long
                if sftp is not None:
                    self.link.drop(sftp)
                raise

        def unsent(exc: BaseException) -> bool:
            # A lost connection is sent again; a request that timed out on a live
            # connection counts as sent.
            return isinstance(exc, (*client.errors().lost, ServiceUnavailable)) or not connected

        return await self._retry.arun(
            once,
            retryable=lambda exc: isinstance(exc, client.retried),
            idempotent=idempotent,
            unsent=unsent,
        )

    async def timed(self, awaitable: Awaitable[_T]) -> _T:
        """Await ``awaitable`` within the per-request ``timeout``."""
        return await within(self.login.timeout, awaitable)

    async def _client(self) -> Session:
        # Called when the link holds no usable session: one caller connects, the others wait.
        link = self.link
        if link.lock is None:
            link.lock = asyncio.Lock()
        async with link.lock:
            sftp = link.usable()
            if sftp is None:
                link.drop()
                if self.client is OPENSSH:
                    wire = await self.timed(self._openssh().connect())
                    link.conn = link.sftp = wire
                    return wire
                conn = await self._connect(link)
                try:
                    sftp = await self.timed(conn.start_sftp_client())
                except BaseException:
                    conn.abort()
                    raise
                link.conn, link.sftp = conn, sftp
            return sftp

    def _client_keys(self) -> list[asyncssh.SSHKey] | None:
        login = self.login
        if login.key is None:
            return None
        try:
            if is_key_text(login.key):
                return [asyncssh.import_private_key(login.key, login.passphrase)]
            return [asyncssh.read_private_key(os.path.expanduser(login.key), login.passphrase)]
        except (ValueError, OSError) as exc:
            # asyncssh's key errors are ValueErrors; their text holds no key material.
            raise ConfigurationError(
                f"Option {login.key_option!r} could not be loaded: "
                f"{redact(str(exc), self.secrets) or type(exc).__name__}"
            ) from None

    async def _connect(self, link: Link) -> asyncssh.SSHClientConnection:
        login = self.login
        keys = self._client_keys()
        host_keys = HostKeys(
            read_known_hosts(self.options.known_hosts), self.options.accept_unknown_host_keys
        )
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
                encryption_algs=_ciphers(),
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
                f"Cannot connect to {login.target}: {redact(str(exc), self.secrets)}"
            ) from exc
        if host_keys.pinned is None and host_keys.accept_unknown:
            host_keys.pinned = conn.get_server_host_key()
        link.host_keys = host_keys
        return conn

    def _openssh(self) -> OpenSSH:
        launcher = self._launcher
        if launcher is None:
            launcher = self._launcher = OpenSSH(self.options, self.login)
            weakref.finalize(self, launcher.cleanup)
        return launcher

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        runner = self._runner
        if runner is None or runner.pid != os.getpid():
            return

        async def drop() -> None:
            self.link.drop()

        runner.run(drop())
