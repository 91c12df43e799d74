"""Configure the WebDAV driver: the collection's URL, credentials, TLS and timeouts."""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from stowage.config import option
from stowage.drivers.options import NetworkOptions
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["WebDAVOptions"]


def _check_url(name: str, value: str) -> str:
    """Return ``value`` ending with a slash, refusing what is not a plain http(s) URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"Option {name!r} must be an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"Option {name!r} must not hold credentials: use 'username' and 'password'."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"Option {name!r} must not have a query or a fragment.")
    return value if value.endswith("/") else value + "/"


@record
class WebDAVOptions(NetworkOptions):
    """Options of the WebDAV driver."""

    url: str = option("", doc="The WebDAV collection holding the files, e.g. https://host/dav/.")
    username: str | None = option(None, doc="User name for HTTP authentication.")
    password: str | None = option(None, doc="Password for HTTP authentication.", secret=True)
    auth: Literal["basic", "digest"] = option(
        "basic", doc="HTTP authentication scheme: 'basic' or 'digest'."
    )
    verify: bool | str = option(
        True, doc="Verify TLS certificates: True, False, or the path of a CA bundle."
    )
    timeout: float = option(30.0, doc="Seconds a request may wait for the server.")
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Retries of a request that changes nothing (GET, PROPFIND, DELETE, MKCOL) after a "
        "connection error, a timeout or a 500/502/503/504 answer, with backoff; a read cut "
        "mid-body is resumed from where it stopped as many times.",
    )
    base_url: str | None = option(
        None,
        doc="Public URL of the same collection as 'url', for url(); without it url() "
        "is refused. Never put credentials in it.",
    )
    headers: dict[str, str] = option(
        default_factory=dict, doc="Extra headers sent with every request.", secret=True
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.url:
            raise ConfigurationError("WebDAV storage needs the 'url' option.")
        object.__setattr__(self, "url", _check_url("url", self.url))
        if self.base_url is not None:
            object.__setattr__(self, "base_url", _check_url("base_url", self.base_url))
        if self.password is not None and not self.username:
            raise ConfigurationError("Option 'password' needs 'username' as well.")
        if self.auth == "digest" and not self.username:
            raise ConfigurationError("Option 'auth' = 'digest' needs 'username' as well.")
        if isinstance(self.verify, str) and not os.path.exists(self.verify):
            raise ConfigurationError("Option 'verify' names a CA bundle that does not exist.")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ConfigurationError("Option 'headers' must map strings to strings.")
