"""stowage: Django storage backends over one adapter and small drivers.

Use a backend from ``STORAGES``::

    STORAGES = {
        "default": {"BACKEND": "stowage.S3Storage", "OPTIONS": {"bucket_name": "media"}},
        "staticfiles": {"BACKEND": "stowage.LocalStorage"},
    }
"""

from typing import TYPE_CHECKING

from stowage import exceptions
from stowage.backends import (
    AzureStorage,
    FTPStorage,
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    SFTPStorage,
    WebDAVStorage,
)
from stowage.storage import Storage

if TYPE_CHECKING:
    from stowage.static import StaticStorage
    from stowage.static_manifest import ManifestStaticStorage

__all__ = [
    "AzureStorage",
    "FTPStorage",
    "GCSStorage",
    "LocalStorage",
    "ManifestStaticStorage",
    "MemoryStorage",
    "S3Storage",
    "SFTPStorage",
    "StaticStorage",
    "Storage",
    "WebDAVStorage",
    "exceptions",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The static storages pull in django.contrib.staticfiles: load them on demand.
    if name == "StaticStorage":
        from stowage.static import StaticStorage

        return StaticStorage
    if name == "ManifestStaticStorage":
        from stowage.static_manifest import ManifestStaticStorage

        return ManifestStaticStorage
    raise AttributeError(f"module 'stowage' has no attribute {name!r}")
