"""Read the SFTP driver's options, and the login they add up to.

django-storages' paramiko ``params`` are accepted: each fills the matching
option left at its default, so :class:`Login` is what the connection uses.
"""

from __future__ import annotations

import shutil
from typing import Any

from stowage.config import option
from stowage.drivers._server import server_address
from stowage.drivers.options import ServerOptions
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["Login", "SFTPOptions", "find_ssh", "is_key_text"]

#: Values of the ``client`` option.
_CLIENTS = frozenset({"asyncssh", "openssh"})

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


@record
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
        "matching option left at its default, and look_for_keys=False keeps the default key "
        "files out of the login.",
        secret=True,
    )
    interactive: bool = option(
        False, doc="django-storages' password prompt; stowage never prompts, only False works."
    )
    client: str = option(
        "asyncssh",
        doc="SSH client: 'asyncssh' (SSH in Python, any login), or 'openssh', OpenSSH's ssh "
        "program, which imports nothing and answers small requests faster; it logs in with "
        "a key or the SSH agent only (no password, no key passphrase) and needs ssh on PATH.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.interactive:
            raise ConfigurationError(
                "Option 'interactive' cannot be True: stowage never prompts for a password; "
                "set 'password' or 'private_key'."
            )
        if self.client not in _CLIENTS:
            raise ConfigurationError(
                f"Option 'client' must be one of {sorted(_CLIENTS)}, got {self.client!r}."
            )
        unknown = set(self.params) - _PARAMS
        if unknown:
            raise ConfigurationError(
                f"Option 'params' has unsupported keys {sorted(unknown)}; "
                f"valid: {sorted(_PARAMS)} (use 'private_key' for a key)."
            )
        self._check_login(Login.from_options(self))
        if self.client == "openssh":
            find_ssh()

    def _check_login(self, login: Login) -> None:
        if self.client == "openssh":
            for value, name in (
                (login.password, "password" if self.password else "params['password']"),
                (
                    login.passphrase,
                    "private_key_passphrase"
                    if self.private_key_passphrase
                    else "params['passphrase']",
                ),
            ):
                if value is not None:
                    raise ConfigurationError(
                        f"Option {name!r} cannot be used with client='openssh': ssh never "
                        "prompts for it. Use a key without a passphrase or the SSH agent "
                        "(use_agent=True), or client='asyncssh'."
                    )
        # params['look_for_keys']=False is honoured or refused, never ignored.
        if login.key is not None or login.default_keys is not False:
            return
        if self.client == "asyncssh" and login.agent:
            raise ConfigurationError(
                "Option params['look_for_keys'] cannot be False with the SSH agent and "
                "client='asyncssh': asyncssh offers the default key files beside the agent's "
                "keys. Set 'private_key', or use client='openssh'."
            )
        if self.client == "openssh" and not login.agent:
            raise ConfigurationError(
                "Option params['look_for_keys'] is False and no key is given: client='openssh' "
                "would have no way to log in. Set 'private_key' or use_agent=True."
            )


@record
class Login:
    """The effective connection settings: options completed from ``params``."""

    host: str
    port: int
    username: str | None
    password: str | None
    key: str | None
    key_option: str
    passphrase: str | None
    agent: bool
    #: Whether to offer the default key files (~/.ssh/id_*); None: as the client does.
    default_keys: bool | None
    timeout: float

    @classmethod
    def from_options(cls, o: SFTPOptions) -> Login:
        """Return the login ``o`` asks for, ``params`` filling the options left at default."""
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
            default_keys=None if "look_for_keys" not in p else bool(p["look_for_keys"]),
            timeout=float(p.get("timeout", o.timeout)) if o.timeout == 30.0 else o.timeout,
        )

    @property
    def target(self) -> str:
        """Name the server and login for messages (no secret in it)."""
        return server_address("sftp", self.username, self.host, self.port)

    def secrets(self) -> list[str]:
        """Return the secret strings that must never appear in a message."""
        values = [self.password, self.passphrase]
        if self.key is not None and is_key_text(self.key):
            values.append(self.key)
        return [v for v in values if v]


def find_ssh() -> str:
    """Return the path of the ``ssh`` program, or raise the error saying what to install."""
    program = shutil.which("ssh")
    if program is None:
        raise ConfigurationError(
            "Option 'client' is 'openssh', but no 'ssh' program is on PATH: install "
            "OpenSSH's client (Debian, Ubuntu: openssh-client), or use client='asyncssh'."
        )
    return program


def is_key_text(value: str) -> bool:
    """Tell whether ``value`` is a private key itself rather than the path of one."""
    return "-----BEGIN" in value or "\n" in value
