"""s3rver on loopback: an S3-compatible server that ignores ``If-None-Match: *``.

The S3 driver's compatibility tests run on it: it stands for the services
(older MinIO, Ceph RGW and others) on which a conditional PUT silently
overwrites. It keeps objects on disk, in a directory of the test session's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers._process import ServerProcess, free_port
from tests.servers._s3 import S3TestServer

__all__ = ["S3rver", "s3rver", "s3rver_bucket", "start_s3rver"]

#: s3rver's built-in account: a published test key pair, not a secret.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"
PROGRAM = Path(__file__).resolve().parent.parent / "node" / "node_modules" / ".bin" / "s3rver"
GUARD = Path(__file__).resolve().with_name("s3rver_guard.cjs")


class S3rver(S3TestServer):
    """A running s3rver."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY


def start_s3rver(log_dir: Path, data_dir: Path) -> S3rver:
    """Start s3rver on a free 127.0.0.1 port, storing objects under ``data_dir``."""
    if not PROGRAM.exists():
        raise RuntimeError(
            "s3rver is missing: run `make node-deps` (npm ci in tests/node; make test does it)."
        )
    port = free_port()
    argv = [
        str(PROGRAM),
        "--directory",
        str(data_dir),
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-vhost-buckets",
        "--silent",
    ]
    # s3rver's listing continuation tokens use DES, which Node's OpenSSL 3 keeps in
    # its legacy provider: without it, any listing of over 1,000 keys fails with a 500.
    # The guard keeps it serving after a crash of its own under concurrent writes.
    env = {"NODE_OPTIONS": f"--openssl-legacy-provider --require {GUARD}"}
    process = ServerProcess("s3rver", argv, port=port, log_dir=log_dir, env=env)
    process.wait_ready()
    return S3rver(process, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def s3rver(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    """Run one s3rver for the whole test session."""
    server = start_s3rver(server_logs, tmp_path_factory.mktemp("s3rver-data"))
    yield server
    server.stop()


@pytest.fixture
def s3rver_bucket(s3rver: S3rver) -> str:
    """Return a new, empty bucket on s3rver."""
    return s3rver.create_bucket()
