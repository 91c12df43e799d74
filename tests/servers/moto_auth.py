"""moto's S3 server in authenticating mode: header signatures are checked.

moto checks no signature by default. Started with
``INITIAL_NO_AUTH_ACTION_COUNT``, it lets that many requests through
unauthenticated and then wants every request signed by an IAM user it knows.
The free requests create that user, its access key, an allow-all policy and a
bucket; every later request is checked (``SignatureDoesNotMatch`` for a wrong
secret). Presigned URLs are not checked in this mode: moto answers them 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port, require_executable

__all__ = ["AuthMotoServer", "moto_auth", "start_moto_auth"]

REGION = "us-east-1"
BUCKET = "signed-only"
#: Only for the unauthenticated setup requests, which moto does not check.
_SETUP_KEY = "stowage-setup-access"
_SETUP_SECRET = "stowage-setup-secret"
#: The requests the setup makes: user, access key, policy, bucket.
_FREE_REQUESTS = 4


@dataclass
class AuthMotoServer:
    """A running moto server that checks signatures, with one IAM user's key."""

    process: ServerProcess
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def boto3(self, service: str = "s3", *, secret_key: str | None = None) -> Any:
        """Return a boto3 client signing as the IAM user (or with ``secret_key``)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
        )

    def options(self, *, secret_key: str | None = None) -> dict[str, Any]:
        """Return stowage S3 OPTIONS for the bucket, with the user's key (or ``secret_key``)."""
        return {
            "bucket_name": self.bucket,
            "endpoint_url": self.endpoint,
            "access_key": self.access_key,
            "secret_key": secret_key or self.secret_key,
            "region_name": REGION,
        }

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def _setup_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=_SETUP_KEY,
        aws_secret_access_key=_SETUP_SECRET,
        region_name=REGION,
    )


def start_moto_auth(log_dir: Path) -> AuthMotoServer:
    """Start an authenticating ``moto_server``, create a user, key, policy and bucket."""
    program = require_executable(
        "moto_server", "pip install 'moto[s3,server]' flask flask-cors (make test installs it)"
    )
    port = free_port()
    process = ServerProcess(
        "moto-auth",
        [program, "-H", "127.0.0.1", "-p", str(port)],
        port=port,
        log_dir=log_dir,
        env={"INITIAL_NO_AUTH_ACTION_COUNT": str(_FREE_REQUESTS)},
    )
    process.wait_ready()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        iam = _setup_client("iam", endpoint)
        iam.create_user(UserName="stowage")
        key = iam.create_access_key(UserName="stowage")["AccessKey"]
        iam.put_user_policy(
            UserName="stowage",
            PolicyName="allow-all",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        _setup_client("s3", endpoint).create_bucket(Bucket=BUCKET)
    except Exception:
        process.stop()
        raise
    return AuthMotoServer(
        process, endpoint, BUCKET, str(key["AccessKeyId"]), str(key["SecretAccessKey"])
    )


@pytest.fixture(scope="session")
def moto_auth(server_logs: Path) -> Iterator[AuthMotoServer]:
    """Run one authenticating moto server for the whole test session."""
    server = start_moto_auth(server_logs)
    yield server
    server.stop()
