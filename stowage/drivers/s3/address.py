"""Address one bucket: the endpoint's scheme and host, and each key's path on it.

Path-style addressing puts the bucket in the path (``/bucket/key``), the
default with ``endpoint_url``; virtual-hosted style puts it in the host
(``bucket.s3.region.amazonaws.com``), Amazon S3's default. An endpoint's own
path (``https://example.com/s3``) is kept before either.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from stowage.drivers.s3.options import S3Options
from stowage.records import record

__all__ = ["Address"]


@record
class Address:
    """Say where one bucket's objects are: scheme, host and the path of each key."""

    scheme: str
    #: Host name, with its port when it has one.
    host: str
    #: The endpoint's own path, without a trailing slash ("" for none).
    base_path: str
    bucket: str
    path_style: bool

    @classmethod
    def of(cls, options: S3Options) -> Address:
        """Return the address the options give: endpoint, region, addressing style."""
        endpoint = options.endpoint_url
        path_style = options.addressing_style == "path" or (
            options.addressing_style == "auto" and endpoint is not None
        )
        bucket, region = options.bucket_name, options.region_name
        if endpoint:
            parts = urlsplit(endpoint)
            return cls(
                parts.scheme or "https", parts.netloc, parts.path.rstrip("/"), bucket, path_style
            )
        host = f"s3.{region}.amazonaws.com" if path_style else f"{bucket}.s3.{region}.amazonaws.com"
        return cls("https", host, "", bucket, path_style)

    @property
    def origin(self) -> str:
        """Return ``scheme://host``."""
        return f"{self.scheme}://{self.host}"

    def path(self, key: str) -> str:
        """Return the unencoded path of ``key`` ("" addresses the bucket itself)."""
        path = f"/{self.bucket}/{key}" if self.path_style else f"/{key}"
        return self.base_path + path

    def bucket_url(self) -> str:
        """Return the URL of the bucket, where browser upload forms are posted."""
        base = f"{self.origin}{self.base_path}"
        return f"{base}/{self.bucket}" if self.path_style else base
