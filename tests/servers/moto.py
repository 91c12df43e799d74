"""moto's S3 server on loopback, for the S3 driver's tests and the benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers._process import ServerProcess, free_port, require_executable
from tests.servers._s3 import S3TestServer

__all__ = ["MotoServer", "s3_bucket", "s3_server", "start_moto"]

#: moto checks no signature; these only keep every client off real credentials.
ACCESS_KEY = "stowage-test-access"
SECRET_KEY = "stowage-test-secret-do-not-leak"
REGION = "us-east-1"


class MotoServer(S3TestServer):
    """A running moto S3 server."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY

    def let_anyone_read(self, bucket: str) -> None:
        """Give ``bucket`` a policy that lets anyone GET its objects, as a public site's does."""
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.boto3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


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
