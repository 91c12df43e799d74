"""Name one storage class per service, each a :class:`~stowage.storage.Storage`.

Each class only fixes the driver (and, for cloud services, the
django-storages settings read as fallbacks); all behaviour is the adapter's.
Importing this module imports no service SDK.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from stowage.storage import Storage

__all__ = [
    "AzureStorage",
    "FTPStorage",
    "GCSStorage",
    "LocalStorage",
    "MemoryStorage",
    "S3Storage",
    "SFTPStorage",
    "WebDAVStorage",
]


class LocalStorage(Storage):
    """Store files in a local directory (``location``, default MEDIA_ROOT)."""

    driver_name: ClassVar[str] = "local"


class MemoryStorage(Storage):
    """Keep files in this process's memory (tests, caches, examples)."""

    driver_name: ClassVar[str] = "memory"


class S3Storage(Storage):
    """Store files in Amazon S3 or an S3-compatible service (extra ``s3``)."""

    driver_name: ClassVar[str] = "s3"

    def presigned_post(
        self,
        name: str,
        *,
        expire: int | dt.timedelta | None = None,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Return ``{"url", "fields"}`` for a browser to POST a file straight to ``name``.

        The form may upload only that name, at most ``max_size`` bytes and
        with ``content_type`` when given. The service overwrites whatever is
        there: choose a fresh name (a random prefix, say) for each upload.
        """
        from stowage.drivers.s3 import S3Driver

        driver = self.driver
        assert isinstance(driver, S3Driver)
        if expire is None:
            expire = self.options.expire_seconds
        lifetime = expire if isinstance(expire, dt.timedelta) else dt.timedelta(seconds=expire)
        return driver.presigned_post(
            self.key(name), expires=lifetime, max_size=max_size, content_type=content_type
        )


class GCSStorage(Storage):
    """Store files in Google Cloud Storage (extra ``gcs``)."""

    driver_name: ClassVar[str] = "gcs"


class AzureStorage(Storage):
    """Store files in Azure Blob Storage (extra ``azure``)."""

    driver_name: ClassVar[str] = "azure"


class SFTPStorage(Storage):
    """Store files on an SSH server over SFTP (extra ``sftp``)."""

    driver_name: ClassVar[str] = "sftp"


class FTPStorage(Storage):
    """Store files on an FTP or FTPS server (standard library only)."""

    driver_name: ClassVar[str] = "ftp"


class WebDAVStorage(Storage):
    """Store files on a WebDAV server (extra ``webdav``)."""

    driver_name: ClassVar[str] = "webdav"
