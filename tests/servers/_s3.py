"""What every S3-compatible test server offers the tests: clients, OPTIONS, buckets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from tests.servers._process import ServerProcess

__all__ = ["S3TestServer"]


@dataclass
class S3TestServer:
    """A running S3-compatible server on loopback, with its fixed test key pair."""

    process: ServerProcess
    endpoint: str

    access_key: ClassVar[str]
    secret_key: ClassVar[str]
    region: ClassVar[str] = "us-east-1"

    def boto3(self) -> Any:
        """Return an independent boto3 client on this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def options(self, bucket: str) -> dict[str, Any]:
        """Return stowage S3 OPTIONS for ``bucket`` on this server."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region_name": self.region,
        }

    def create_bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        name = f"bucket-{secrets.token_hex(6)}"
        self.boto3().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()
