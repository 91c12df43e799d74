"""Read the ``STOWAGE_DIRECT_UPLOADS`` setting and decide who may upload."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string

from stowage.drivers.base import MiB
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["UploadSettings", "may_upload", "upload_settings"]


@record
class UploadSettings:
    """Hold the settings of direct uploads, with their defaults."""

    #: A permission ("app.codename") the user needs; None: staff only.
    PERMISSION: str | None = None
    #: A dotted path to ``check(request) -> bool`` replacing PERMISSION.
    CHECK: str | None = None
    #: The largest file a field allows unless it says otherwise.
    MAX_SIZE: int = 1024 * MiB
    #: How long a signed part URL lasts, in seconds (minutes, not hours).
    URL_EXPIRE: int = 600
    #: How long an upload can be resumed and a staged file submitted, in seconds.
    SESSION_AGE: int = 24 * 3600
    #: The size of each S3 part (S3 needs at least 5 MiB for all but the last).
    PART_SIZE: int = 8 * MiB
    #: The size of each tus PATCH the widget sends.
    CHUNK_SIZE: int = 4 * MiB
    #: Where uploads are staged in the storage, one folder per user below.
    STAGING_PREFIX: str = "stowage-staging"
    #: Where the tus endpoint stages chunks on the server's disk.
    TEMP_DIR: str = ""
    #: The origins the bucket's CORS rules admit (``manage.py stowage cors``).
    CORS_ORIGINS: tuple[str, ...] = ()

    def temp_dir(self) -> Path:
        """Return the directory for tus uploads, created if missing."""
        base = self.TEMP_DIR or getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
        path = Path(base or tempfile.gettempdir()) / "stowage-uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path


def upload_settings() -> UploadSettings:
    """Return ``settings.STOWAGE_DIRECT_UPLOADS`` checked, over the defaults."""
    given: dict[str, Any] = dict(getattr(settings, "STOWAGE_DIRECT_UPLOADS", None) or {})
    known = {field.name for field in dataclasses.fields(UploadSettings)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigurationError(
            f"STOWAGE_DIRECT_UPLOADS has unknown keys {unknown}; valid keys: {sorted(known)}."
        )
    if "CORS_ORIGINS" in given:
        given["CORS_ORIGINS"] = tuple(given["CORS_ORIGINS"])
    for key in ("MAX_SIZE", "URL_EXPIRE", "SESSION_AGE", "PART_SIZE", "CHUNK_SIZE"):
        if key in given and (not isinstance(given[key], int) or given[key] < 1):
            raise ConfigurationError(
                f"STOWAGE_DIRECT_UPLOADS[{key!r}] must be a positive integer, not {given[key]!r}."
            )
    if given.get("PART_SIZE", 5 * MiB) < 5 * MiB:
        raise ConfigurationError(
            "STOWAGE_DIRECT_UPLOADS['PART_SIZE'] must be at least 5 MiB (S3's smallest part)."
        )
    if not 60 <= given.get("URL_EXPIRE", 600) <= 3600:
        raise ConfigurationError(
            "STOWAGE_DIRECT_UPLOADS['URL_EXPIRE'] must be 60 to 3600 seconds: signed "
            "upload URLs should expire in minutes."
        )
    if "/" in given.get("STAGING_PREFIX", "x").strip("/") or not given.get("STAGING_PREFIX", "x"):
        raise ConfigurationError(
            "STOWAGE_DIRECT_UPLOADS['STAGING_PREFIX'] must be one non-empty folder name."
        )
    return UploadSettings(**given)


def may_upload(request: HttpRequest) -> bool:
    """Tell whether ``request``'s user may get upload authorisation.

    ``CHECK`` decides when set; else the user must be signed in and hold
    ``PERMISSION``, or be staff when no permission is named.
    """
    options = upload_settings()
    if options.CHECK:
        check: Callable[[HttpRequest], bool] = import_string(options.CHECK)
        return bool(check(request))
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if options.PERMISSION:
        return bool(user.has_perm(options.PERMISSION))
    return bool(user.is_staff)
