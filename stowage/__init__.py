"""stowage: Django storage backends over one adapter and small drivers.

Use a backend from ``STORAGES``::

    STORAGES = {
        "default": {"BACKEND": "stowage.S3Storage", "OPTIONS": {"bucket_name": "media"}},
        "staticfiles": {"BACKEND": "stowage.LocalStorage"},
    }
"""

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
from stowage.static import ManifestStaticStorage, StaticStorage
from stowage.storage import Storage

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
