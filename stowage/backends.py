"""Name one storage class per service, each a :class:`~stowage.storage.Storage`.

Each class only fixes the driver (and, for cloud services, the
django-storages settings read as fallbacks); all behaviour is the adapter's.
Importing this module imports no service SDK.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import warnings
from typing import Any, ClassVar

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.functional import Promise

from stowage.exceptions import ConfigurationError
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


#: Settings a storage built without the matching argument follows, as Django's do.
_FOLLOWED_SETTINGS = frozenset(
    {"MEDIA_ROOT", "MEDIA_URL", "FILE_UPLOAD_PERMISSIONS", "FILE_UPLOAD_DIRECTORY_PERMISSIONS"}
)

#: Django 5.2's default flags for creating a file; Django 6 dropped the attribute.
_EXCLUSIVE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _deprecation_category() -> type[Warning]:
    try:
        from django.utils.deprecation import (  # type: ignore[attr-defined,unused-ignore]
            RemovedInDjango60Warning,
        )
    except ImportError:  # Django 6 no longer has it
        return DeprecationWarning
    category: type[Warning] = RemovedInDjango60Warning
    return category


class _DjangoSignature(Storage):
    """Take Django's filesystem storage arguments and follow settings as it does.

    Like Django's storages, these take an upload's temporary file on save
    (``consume_temporary_uploads``): moved into place where possible.

    ``location``, ``base_url``, ``file_permissions_mode`` and
    ``directory_permissions_mode`` may be given by position, in Django's
    order. ``base_url`` may be lazy (``reverse_lazy``): it is evaluated when
    first needed. A storage re-reads MEDIA_ROOT, MEDIA_URL and the upload
    permission settings when they change (``override_settings``), for every
    argument it was not given.
    """

    consume_temporary_uploads = True

    def __init__(
        self,
        location: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        file_permissions_mode: int | None = None,
        directory_permissions_mode: int | None = None,
        **options: Any,
    ) -> None:
        given = {
            # A Path is accepted as Django accepts it; anything else is type-checked.
            "location": os.fspath(location) if isinstance(location, os.PathLike) else location,
            "file_permissions_mode": file_permissions_mode,
            "directory_permissions_mode": directory_permissions_mode,
        }
        options.update({k: v for k, v in given.items() if v is not None})
        self._lazy_base_url: Promise | None = None
        self._without_urls = False
        if isinstance(base_url, Promise):
            self._lazy_base_url = base_url
        elif base_url is not None:
            options["base_url"] = base_url
        super().__init__(**options)
        setting_changed.connect(self._follow_setting)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        setting_changed.connect(self._follow_setting)

    def _follow_setting(self, setting: str, **kwargs: Any) -> None:
        if setting in _FOLLOWED_SETTINGS:
            # The driver read the settings when it was made: make a new one.
            self.close()

    def _resolve_base_url(self) -> None:
        lazy, self._lazy_base_url = self._lazy_base_url, None
        if lazy is not None:
            self.options = dataclasses.replace(self.options, base_url=str(lazy))
            self._url_policy = None

    @property
    def base_url(self) -> str | None:
        """Return the URL prefix of the files: ``base_url``, else MEDIA_URL.

        Setting it to None makes :meth:`url` raise ``ValueError``, as Django's do.
        """
        if self._without_urls:
            return None
        self._resolve_base_url()
        given = self.options.base_url
        if given is not None:
            return given
        media_url = settings.MEDIA_URL
        return None if media_url is None else str(media_url)

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        self._lazy_base_url = None
        self._without_urls = value is None
        if value is not None:
            self.options = dataclasses.replace(self.options, base_url=value)
        self._url_policy = None

    def url(self, name: str | None, **kwargs: Any) -> str:
        """Return the URL of ``name`` under :attr:`base_url` (see :meth:`Storage.url`)."""
        if self.options.custom_domain is None and self.base_url is None:
            raise ValueError("This file is not accessible via a URL.")
        return super().url(name, **kwargs)

    def _mode(self, name: str, setting: str) -> int | None:
        given: int | None = getattr(self.driver_options, name)
        return given if given is not None else getattr(settings, setting)

    @property
    def file_permissions_mode(self) -> int | None:
        """Return the mode of new files (``file_permissions_mode`` or the setting)."""
        return self._mode("file_permissions_mode", "FILE_UPLOAD_PERMISSIONS")

    @property
    def directory_permissions_mode(self) -> int | None:
        """Return the mode of new directories (the option or the setting)."""
        return self._mode("directory_permissions_mode", "FILE_UPLOAD_DIRECTORY_PERMISSIONS")


class LocalStorage(_DjangoSignature):
    """Store files in a local directory (``location``, default MEDIA_ROOT).

    Takes ``FileSystemStorage``'s arguments, ``allow_overwrite`` included (the
    same as ``file_overwrite``).
    """

    driver_name: ClassVar[str] = "local"
    #: Django 5.2's deprecated hook: flags without ``O_EXCL`` mean overwriting.
    OS_OPEN_FLAGS: ClassVar[int] = _EXCLUSIVE_FLAGS

    def __init__(
        self,
        location: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        file_permissions_mode: int | None = None,
        directory_permissions_mode: int | None = None,
        allow_overwrite: bool | None = None,
        **options: Any,
    ) -> None:
        if allow_overwrite is not None:
            if "file_overwrite" in options:
                raise ConfigurationError(
                    "Options 'allow_overwrite' and 'file_overwrite' mean the same; give only one."
                )
            options["file_overwrite"] = allow_overwrite
        if self.OS_OPEN_FLAGS != _EXCLUSIVE_FLAGS:
            warnings.warn(
                "Overriding OS_OPEN_FLAGS is deprecated. Use the allow_overwrite "
                "parameter instead.",
                _deprecation_category(),
                stacklevel=2,
            )
            if not self.OS_OPEN_FLAGS & os.O_EXCL:
                options.setdefault("file_overwrite", True)
        super().__init__(
            location, base_url, file_permissions_mode, directory_permissions_mode, **options
        )

    @property
    def base_location(self) -> str:
        """Return the directory as configured (``location``, else MEDIA_ROOT)."""
        given = getattr(self.driver_options, "location", None)
        return str(settings.MEDIA_ROOT if given is None else given)

    @property
    def location(self) -> str:
        """Return the absolute path of the directory holding the files."""
        return os.path.abspath(self.base_location)


class MemoryStorage(_DjangoSignature):
    """Keep files in this process's memory (tests, caches, examples).

    Takes ``InMemoryStorage``'s arguments; ``location`` is a prefix of the
    stored names here, and the permission modes are only reported back.
    """

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
