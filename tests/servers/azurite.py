"""Azurite's blob service on loopback, for the Azure driver's tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port

__all__ = ["Azurite", "azure_container", "azurite", "start_azurite"]

#: Azurite's published development account: a well-known test key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PROGRAM = Path(__file__).resolve().parent.parent / "node" / "node_modules" / ".bin" / "azurite-blob"


@dataclass
class Azurite:
    """A running Azurite blob service."""

    process: ServerProcess
    endpoint: str

    def client(self) -> Any:
        """Return an independent azure-storage-blob client on this service."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(account_url=self.endpoint, credential=ACCOUNT_KEY)

    def create_container(self) -> str:
        """Create a fresh container and return its name."""
        name = f"c{secrets.token_hex(6)}"
        self.client().create_container(name)
        return name

    def options(self, container: str) -> dict[str, Any]:
        """Return stowage OPTIONS for ``container`` on this service."""
        return {
            "azure_container": container,
            "account_name": ACCOUNT,
            "account_key": ACCOUNT_KEY,
            "endpoint": self.endpoint,
        }

    def stop(self) -> None:
        """Stop the service by its PID."""
        self.process.stop()


def start_azurite(log_dir: Path) -> Azurite:
    """Start Azurite's blob service on a free 127.0.0.1 port."""
    if not PROGRAM.exists():
        raise RuntimeError(
            "Azurite is missing: run `make node-deps` (npm ci in tests/node; make test does it)."
        )
    port = free_port()
    argv = [
        str(PROGRAM),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
    ]
    process = ServerProcess("azurite", argv, port=port, log_dir=log_dir)
    process.wait_ready()
    return Azurite(process, f"http://127.0.0.1:{port}/{ACCOUNT}")


@pytest.fixture(scope="session")
def azurite(server_logs: Path) -> Iterator[Azurite]:
    """Run one Azurite for the whole test session."""
    server = start_azurite(server_logs)
    yield server
    server.stop()


@pytest.fixture
def azure_container(azurite: Azurite) -> str:
    """Return a new, empty container."""
    return azurite.create_container()
