"""Connect with OpenSSH's ``ssh`` program: the ``client="openssh"`` option.

``ssh`` does the SSH part in C (key exchange, ciphers, the host key check
against known_hosts) and hands stowage the SFTP subsystem on its pipes,
where :class:`~stowage.drivers.sftp.wire.WireClient` speaks the protocol.
Nothing of SSH is imported into the process, and a request costs a round
trip through the pipes and the network, not Python cryptography.

The command reads no ``ssh_config`` file: the options say everything, as
with the asyncssh client. Secrets never reach the command line: a private
key given as text is written to a file only the process's user can read,
in a directory of its own removed with the storage. ``ssh`` never prompts
(``BatchMode``), so a password or a key passphrase cannot be used.

A server missing from known_hosts is refused, or with
``accept_unknown_host_keys`` its first key is written to that directory's
copy of known_hosts: pinned for the life of the storage, as the asyncssh
client pins it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile

from stowage.drivers._deadline import within
from stowage.drivers._server import redact
from stowage.drivers.sftp.host_keys import known_hosts_text
from stowage.drivers.sftp.options import Login, SFTPOptions, find_ssh, is_key_text
from stowage.drivers.sftp.packets import ConnectionLost
from stowage.drivers.sftp.wire import WireClient
from stowage.exceptions import (
    AccessDenied,
    ConfigurationError,
    ServiceTimeout,
    ServiceUnavailable,
)

__all__ = ["OpenSSH"]

#: What a server that refuses the login makes ``ssh`` print.
_REFUSED = "Permission denied"
#: What a failed host key check makes ``ssh`` print, and what each cause adds.
_HOST_KEY_FAILED = "Host key verification failed"
_HOST_KEY_CHANGED = "IDENTIFICATION HAS CHANGED"
_HOST_KEY_UNKNOWN = "host key is known"


def _quoted(value: str, option: str) -> str:
    """Return the path ``value`` as one ssh_config argument: tokens escaped, spaces kept."""
    if '"' in value or "\n" in value:
        raise ConfigurationError(
            f"Option {option!r}: ssh cannot take a path holding quotes or newlines ({value!r})."
        )
    return '"' + value.replace("%", "%%") + '"'


class OpenSSH:
    """Start ``ssh`` sessions for one storage's login, keeping its files private."""

    def __init__(self, options: SFTPOptions, login: Login) -> None:
        self.options = options
        self.login = login
        self.program = find_ssh()
        self.secrets = login.secrets()
        self._directory: str | None = None

    def _files(self) -> str:
        """Return the private directory, made with known_hosts (and the key) at first use."""
        directory = self._directory
        if directory is not None:
            return directory
        known = known_hosts_text(self.options.known_hosts)
        directory = tempfile.mkdtemp(prefix="stowage-ssh-")  # mode 0700
        self._write(os.path.join(directory, "known_hosts"), known.encode())
        key = self.login.key
        if key is not None and is_key_text(key):
            self._write(os.path.join(directory, "key"), key.strip().encode() + b"\n")
        self._directory = directory
        return directory

    @staticmethod
    def _write(path: str, content: bytes) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)

    def command(self) -> list[str]:
        """Return the ``ssh`` command that opens the SFTP subsystem for this login."""
        login, options = self.login, self.options
        directory = self._files()
        settings = {
            "BatchMode": "yes",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "PreferredAuthentications": "publickey",
            "StrictHostKeyChecking": "accept-new" if options.accept_unknown_host_keys else "yes",
            "UserKnownHostsFile": _quoted(os.path.join(directory, "known_hosts"), "known_hosts"),
            "GlobalKnownHostsFile": "none",
            "CheckHostIP": "no",
            "UpdateHostKeys": "no",
            "ConnectTimeout": str(max(1, math.ceil(login.timeout))),
            "ServerAliveInterval": "60",
            "ServerAliveCountMax": "3",
            "ClearAllForwardings": "yes",
            "ControlMaster": "no",
            "ControlPath": "none",
            "LogLevel": "ERROR",
        }
        if not login.agent:
            settings["IdentityAgent"] = "none"
        key = login.key
        if key is not None:
            path = os.path.join(directory, "key") if is_key_text(key) else os.path.expanduser(key)
            settings["IdentityFile"] = _quoted(path, login.key_option)
            if not login.agent:
                # The key alone; with use_agent the agent's keys are offered too.
                settings["IdentitiesOnly"] = "yes"
        elif login.default_keys is False:
            settings["IdentityFile"] = "none"  # the agent's keys only, not ~/.ssh/id_*
        argv = [self.program, "-F", "none", "-T", "-x", "-a", "-p", str(login.port)]
        if login.username:
            argv += ["-l", login.username]
        for name, value in settings.items():
            argv += ["-o", f"{name}={value}"]
        return [*argv, "-s", "--", login.host, "sftp"]

    async def connect(self) -> WireClient:
        """Start ``ssh`` and its SFTP session, within the login's timeout."""
        login = self.login
        try:
            return await within(login.timeout, WireClient.start(self.command()))
        except TimeoutError as exc:
            raise ServiceTimeout(
                f"Connecting to {login.target} took longer than {login.timeout:g} s."
            ) from exc
        except ConnectionLost as exc:
            raise self._refusal(str(exc)) from exc
        except OSError as exc:
            raise ServiceUnavailable(
                f"Cannot start ssh for {login.target}: {redact(str(exc), self.secrets)}"
            ) from exc

    def _refusal(self, said: str) -> Exception:
        """Return the error for what ``ssh`` printed when it could not start the session."""
        login = self.login
        said = redact(said.strip(), self.secrets)
        if _HOST_KEY_FAILED in said:
            if _HOST_KEY_CHANGED in said:
                problem = "does not match the key known_hosts lists for it (refused)"
            elif _HOST_KEY_UNKNOWN in said:
                problem = (
                    "is unknown: add it to known_hosts, or set accept_unknown_host_keys=True "
                    "to trust it on first connection"
                )
            else:
                problem = "could not be verified"
            return AccessDenied(f"The host key of {login.host}:{login.port} {problem}.")
        if _REFUSED in said:
            return AccessDenied(
                f"{login.target} refused the login; check the username and private key "
                f"(ssh said: {said})"
            )
        if "Load key" in said or "no such identity" in said:
            return ConfigurationError(f"Option {login.key_option!r} could not be loaded: {said}")
        return ServiceUnavailable(f"Cannot connect to {login.target}: {said or 'ssh exited'}")

    def cleanup(self) -> None:
        """Remove the private directory (the key file and known_hosts copy)."""
        directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
