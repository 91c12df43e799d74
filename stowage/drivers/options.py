"""Option bases the drivers share, so a shared option means the same everywhere.

:class:`NetworkOptions` is what every network driver takes (how long to wait,
how often to retry, on the one :class:`~stowage.drivers.retry.RetryPolicy`);
:class:`ServerOptions` adds a server login's address and directory (SFTP,
FTP); :class:`ObjectStoreOptions` adds TLS, connection and multipart settings
(the obstore-backed S3 and Azure). A driver subclasses one of them and may
declare a shared field again only to say it better (``doc``) or to change its
default; its checks live in the base's ``__post_init__``.
"""

from __future__ import annotations

import ssl
from typing import Any

from stowage.config import option
from stowage.drivers import _gzip
from stowage.drivers.base import DriverOptions, MiB
from stowage.drivers.retry import DEFAULT_MAX_RETRIES, RetryPolicy
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = [
    "GzipOptions",
    "ListingOptions",
    "NetworkOptions",
    "ObjectStoreOptions",
    "ServerOptions",
    "tls_context",
]

#: The ``verify`` option's documentation, for the drivers that speak TLS.
VERIFY_DOC = (
    "Verify the service's TLS certificate: True, False (trusted networks only), or the "
    "path of a PEM CA bundle trusted besides the public roots (a private CA)."
)


def tls_context(verify: bool | str | None) -> ssl.SSLContext | None:
    """Return the TLS context the ``verify`` option asks for (None: the default one).

    A CA bundle is trusted besides the public roots, as :data:`VERIFY_DOC` says.
    """
    if verify is False:
        return ssl._create_unverified_context()
    if isinstance(verify, str):
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=verify)
        return context
    return None


@record
class GzipOptions(DriverOptions):
    """Options of the object stores that can keep bodies gzip-compressed (S3, GCS)."""

    gzip: bool = option(
        False, doc="Store bodies of the gzip_content_types gzip-compressed (Content-Encoding)."
    )
    gzip_content_types: tuple[str, ...] = option(
        _gzip.DEFAULT_TYPES, doc="Content types compressed when 'gzip' is on."
    )


@record
class ListingOptions(DriverOptions):
    """Options of the object stores whose exists() can ask a single listing (S3, GCS, Azure)."""

    exists_by_listing: bool = option(
        True,
        doc="Answer exists() with one listing of the name's prefix (delimiter '/'), which "
        "finds a file and a directory alike in one request. False asks for the object first "
        "and lists below the name only when it is missing: for a file one request that "
        "services bill at a lower rate, for a missing name two in a row. Turn it off on a "
        "server whose delimited listings miss nested directories (s3rver does). Where "
        "stowage cannot send that listing itself (S3 or Azure behind an https:// or SOCKS "
        "proxy; Azure with a service principal or managed identity), exists() asks as with "
        "False, with the same answers.",
    )


@record
class NetworkOptions(DriverOptions):
    """Options of every driver that talks to a service over the network."""

    timeout: float = option(60.0, doc="Seconds a request may take.")
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Retries of a failed request that is safe to repeat, with the pause every "
        "network driver uses (capped exponential backoff with jitter).",
    )

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigurationError("Option 'timeout' must be positive.")
        if self.max_retries < 0:
            raise ConfigurationError("Option 'max_retries' must be 0 or more.")

    def retry_policy(self, *, deadline: float | None = None) -> RetryPolicy:
        """Return the retry policy these options ask for."""
        return RetryPolicy.for_retries(self.max_retries, deadline=deadline)


@record
class ServerOptions(NetworkOptions):
    """Options of a driver that logs in to one server and keeps files in a directory."""

    host: str = option("", doc="Host name or address of the server.")
    port: int = option(0, doc="Port of the server.")
    root_path: str = option("", doc="Directory on the server holding the files.")
    base_url: str | None = option(
        None, doc="URL where root_path is served, ending with a slash; url() needs it."
    )
    timeout: float = option(30.0, doc="Seconds a connection or a reply may take.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"Option 'port' must be 1-65535, got {self.port}.")
        if self.base_url is not None and not self.base_url.endswith("/"):
            raise ConfigurationError(
                f"Option 'base_url' must end with a slash, got {self.base_url!r}."
            )


@record
class ObjectStoreOptions(NetworkOptions):
    """Options of the obstore-backed object stores: TLS, connections, multipart uploads."""

    verify: bool | str = option(True, doc=VERIFY_DOC)
    connect_timeout: float = option(5.0, doc="Seconds to wait for a connection.")
    multipart_threshold: int = option(8 * MiB, doc="Bodies larger than this go up in parts.")
    multipart_chunksize: int = option(
        8 * MiB, doc="Size of each uploaded part; larger for a body that needs too many parts."
    )
    multipart_concurrency: int = option(
        4, doc="Parts uploaded at once; each holds one part in memory."
    )
    object_parameters: dict[str, Any] = option(
        default_factory=dict, doc="Headers and metadata for every object."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.multipart_concurrency < 1:
            raise ConfigurationError("Option 'multipart_concurrency' must be at least 1.")
        if self.multipart_threshold < 0:
            raise ConfigurationError("Option 'multipart_threshold' must be 0 or more.")
