"""wsgidav (on cheroot) on loopback, for the WebDAV driver's tests.

Two servers run for the session: one anonymous, started from the command
line alone (``--no-config --auth anonymous``), and one that requires a
user. wsgidav's command line has no option for users, so that one gets an
explicit JSON configuration file (``--config FILE``, which also stops the
search for a ``wsgidav.yaml`` in the working directory) accepting both
basic and digest authentication and challenging with digest.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers._process import ServerProcess, free_port, require_executable

__all__ = [
    "PASSWORD",
    "USERNAME",
    "WsgiDAV",
    "start_wsgidav",
    "wsgidav_anonymous",
    "wsgidav_auth",
]

USERNAME = "alice"
#: The test user's password: tests check it never shows in reprs or messages.
PASSWORD = "dav-Pass-7c1e9b"
_HINT = "pip install wsgidav cheroot (both are in the test requirements)"


@dataclass
class WsgiDAV:
    """A running wsgidav server sharing ``root`` as its WebDAV root ``url``."""

    process: ServerProcess
    root: Path
    url: str
    password: str | None = None

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        return self.process.port

    def auth(self) -> httpx.Auth | None:
        """Return plain httpx credentials for this server (None if anonymous)."""
        return None if self.password is None else httpx.DigestAuth(USERNAME, self.password)

    def collection(self) -> str:
        """Create a fresh, empty collection and return its URL."""
        url = f"{self.url}t{secrets.token_hex(6)}/"
        response = httpx.request("MKCOL", url, auth=self.auth(), timeout=10)
        assert response.status_code == 201, response.status_code
        return url

    def options(self, url: str, **extra: Any) -> dict[str, Any]:
        """Return stowage OPTIONS for the collection at ``url``."""
        options: dict[str, Any] = {"url": url}
        if self.password is not None:
            options.update(username=USERNAME, password=self.password)
        return {**options, **extra}

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def start_wsgidav(log_dir: Path, root: Path, *, password: str | None = None) -> WsgiDAV:
    """Start wsgidav on a free 127.0.0.1 port, anonymous or with one user."""
    program = require_executable("wsgidav", _HINT)
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    if password is None:
        name = "wsgidav-anonymous"
        argv = [program, "--no-config", "--auth", "anonymous"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--root", str(root)]
    else:
        name = "wsgidav-auth"
        config = {
            "host": "127.0.0.1",
            "port": port,
            "server": "cheroot",
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": {USERNAME: {"password": password}}}},
            "http_authenticator": {
                "accept_basic": True,
                "accept_digest": True,
                "default_to_digest": True,
            },
            "verbose": 2,
        }
        config_path = log_dir / f"{name}.json"
        config_path.write_text(json.dumps(config))
        argv = [program, "--config", str(config_path)]
    argv += ["--server", "cheroot", "-q"]
    process = ServerProcess(name, argv, port=port, log_dir=log_dir)
    process.wait_ready()
    return WsgiDAV(process, root, f"http://127.0.0.1:{port}/", password)


@pytest.fixture(scope="session")
def wsgidav_anonymous(
    server_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WsgiDAV]:
    """Run one anonymous wsgidav for the whole test session."""
    server = start_wsgidav(server_logs, tmp_path_factory.mktemp("dav-anonymous"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wsgidav_auth(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WsgiDAV]:
    """Run one wsgidav that requires a user (basic or digest) for the whole session."""
    server = start_wsgidav(server_logs, tmp_path_factory.mktemp("dav-auth"), password=PASSWORD)
    yield server
    server.stop()
