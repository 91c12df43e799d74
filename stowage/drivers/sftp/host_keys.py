"""Decide which host keys to trust when connecting to the SSH server.

Host keys are checked against ``known_hosts`` (default ``~/.ssh/known_hosts``).
A host missing from it is refused unless ``accept_unknown_host_keys`` is set,
in which case its first key is pinned for the life of the storage; a key
differing from a listed one is always refused.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from stowage.exceptions import ConfigurationError

if TYPE_CHECKING:
    import asyncssh
else:
    from stowage.drivers.sftp._asyncssh import asyncssh

__all__ = ["HostKeys", "known_hosts_text", "read_known_hosts"]


def known_hosts_text(given: str | None) -> str:
    """Return the ``known_hosts`` option's file (the user's own one when not given).

    A missing default file lists nothing; a missing named one is an error.
    Both clients read it here: asyncssh parses it, ``ssh`` gets a copy.
    """
    path = os.path.expanduser(given or "~/.ssh/known_hosts")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        if given:
            raise ConfigurationError(f"Option 'known_hosts': no file at {given!r}.") from None
        return ""
    except (ValueError, OSError) as exc:
        raise ConfigurationError(f"Option 'known_hosts' could not be read: {exc}") from None


def read_known_hosts(given: str | None) -> asyncssh.SSHKnownHosts:
    """Read the ``known_hosts`` option's file for asyncssh (see :func:`known_hosts_text`)."""
    text = known_hosts_text(given)
    try:
        return asyncssh.import_known_hosts(text)
    except ValueError as exc:
        raise ConfigurationError(f"Option 'known_hosts' could not be read: {exc}") from None


class HostKeys:
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
