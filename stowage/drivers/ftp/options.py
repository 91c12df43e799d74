"""Read the FTP driver's options, and the server they name once ``location`` is applied.

``location`` accepts django-storages' URL form,
``ftp://user:password@host:port/path`` (``ftps://`` for TLS, ``aftp://``
for active mode); its parts fill in the options left at their defaults.
The password never appears in ``repr``, messages or logs.
"""

from __future__ import annotations

import codecs
import os
import posixpath
from urllib.parse import unquote, urlsplit

from stowage.config import option
from stowage.drivers.options import ServerOptions
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["FTPOptions", "Server"]


@record
class FTPOptions(ServerOptions):
    """Options of the FTP driver (django-storages' ``location`` URL is accepted too)."""

    port: int = option(21, doc="Port of the server.")
    username: str = option("", doc="User to log in as (empty: anonymous).")
    password: str = option("", doc="Password of ``username``.", secret=True)
    tls: bool = option(False, doc="Use explicit FTPS (AUTH TLS) with a protected data channel.")
    verify: bool | str = option(
        True, doc="Verify the server's TLS certificate: True, False, or a CA bundle path."
    )
    passive: bool = option(True, doc="Use passive mode (the client opens data connections).")
    root_path: str = option(
        "", doc="Directory holding the files: absolute, or relative to the login directory."
    )
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Times a call is tried again on a new connection after connecting failed, the "
        "connection broke or a reply timed out (an upload only before it read its source), "
        "with the pause every network driver uses (capped exponential backoff with jitter).",
    )
    encoding: str = option("utf-8", doc="Encoding of names on the control connection.")
    location: str = option(
        "",
        doc="django-storages' 'ftp://user:password@host:port/path' (ftps:// for TLS, "
        "aftp:// for active mode), or a directory below root_path.",
        secret=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigurationError(
                f"Option 'encoding' names no codec: {self.encoding!r}."
            ) from None
        if isinstance(self.verify, str) and not os.path.isfile(self.verify):
            raise ConfigurationError(f"Option 'verify' names no file: {self.verify!r}.")


@record
class Server:
    """Where and how to connect, after the ``location`` URL is applied."""

    host: str
    port: int
    username: str
    password: str
    tls: bool
    passive: bool
    root_path: str

    @classmethod
    def from_options(cls, options: FTPOptions) -> Server:
        """Return the server ``options`` name, ``location``'s parts filling the defaults."""
        host, port = options.host, options.port
        username, password = options.username, options.password
        tls, passive, root_path = options.tls, options.passive, options.root_path
        location = options.location
        if "://" in location:
            # The URL holds the password: no message below may quote it.
            try:
                url = urlsplit(location)
                url_port = url.port
            except ValueError:
                raise ConfigurationError("Option 'location' is not a valid FTP URL.") from None
            if url.scheme not in ("ftp", "ftps", "aftp") or not url.hostname:
                raise ConfigurationError(
                    "Option 'location' must look like ftp://user:password@host:port/path "
                    "(schemes ftp, ftps, aftp)."
                )
            host = host or url.hostname
            port = url_port if port == 21 and url_port else port
            username = username or unquote(url.username or "")
            password = password or unquote(url.password or "")
            tls = tls or url.scheme == "ftps"
            passive = passive and url.scheme != "aftp"
            path = unquote(url.path).lstrip("/")
            root_path = posixpath.join(root_path, path) if root_path else path
        elif location:
            root_path = posixpath.join(root_path, location) if root_path else location
        if not host:
            raise ConfigurationError(
                "FTP storage needs 'host' (OPTIONS), or 'location' as "
                "ftp://user:password@host:port/path (OPTIONS or FTP_STORAGE_LOCATION)."
            )
        return cls(host, port, username, password, tls, passive, root_path.rstrip("/"))
