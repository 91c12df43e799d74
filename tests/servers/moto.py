"""moto's S3 server on loopback, for the S3 driver's tests and the benchmarks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port, require_executable

__all__ = ["MotoServer", "s3_bucket", "s3_server", "start_moto"]

#: moto checks no signature; these only keep every client off real credentials.
ACCESS_KEY = "stowage-test-access"
SECRET_KEY = "stowage-test-secret-do-not-leak"
REGION = "us-east-1"


@dataclass
class MotoServer:
    """A running moto S3 server."""

    process: ServerProcess
    endpoint: str

    def boto3(self) -> Any:
        """Return an independent boto3 client on this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def options(self, bucket: str) -> dict[str, Any]:
        """Return stowage OPTIONS for ``bucket`` on this server."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": REGION,
        }

    def create_bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        name = f"bucket-{secrets.token_hex(6)}"
        self.boto3().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def start_moto(log_dir: Path) -> MotoServer:
    """Start ``moto_server`` on a free 127.0.0.1 port and wait until it answers."""
    program = require_executable(
        "moto_server", "pip install 'moto[s3,server]' flask flask-cors (make test installs it)"
    )
    port = free_port()
    process = ServerProcess(
        "moto", [program, "-H", "127.0.0.1", "-p", str(port)], port=port, log_dir=log_dir
    )
    process.wait_ready()
    return MotoServer(process, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def s3_server(server_logs: Path) -> Iterator[MotoServer]:
    """Run one moto server for the whole test session."""
    server = start_moto(server_logs)
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: MotoServer) -> str:
    """Return a new, empty bucket."""
    return s3_server.create_bucket()
