"""Keep Django files in an HTTP asset API: a complete stowage driver.

The API: ``PUT``/``GET``/``HEAD``/``DELETE`` on ``/assets/<key>`` (``Range``, ``If-None-Match``)
and ``GET /assets?prefix=&delimiter=/&cursor=`` listing in pages of JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import ProxyHandler, Request, build_opener

from stowage import exceptions as errors
from stowage.config import option
from stowage.drivers import base
from stowage.drivers.errors import ErrorTable, Rule
from stowage.drivers.options import NetworkOptions

__all__ = ["AssetDriver", "AssetOptions"]

_CHUNK = 1 << 20
#: The API's failures and stowage's exception for each (412: the key is taken).
_ERRORS = ErrorTable(
    Rule(401, errors.AccessDenied),
    Rule(404, errors.NotFound),
    Rule(412, errors.AlreadyExists),
    Rule(range(500, 600), errors.ServiceUnavailable),
    Rule(HTTPError, errors.ServiceError),
    Rule(URLError, errors.ServiceUnavailable, "{what}: cannot reach the asset API ({detail})"),
    status=lambda exc: exc.code if isinstance(exc, HTTPError) else None,
)


@dataclass(frozen=True)
class AssetOptions(NetworkOptions):
    """Options of the asset API driver; ``timeout`` and ``max_retries`` come with the base."""

    api_url: str = option("", doc="Base URL of the API, such as https://assets.example.com/.")
    token: str = option("", doc="API token.", secret=True, env="ASSET_API_TOKEN")


class AssetDriver(base.Driver[AssetOptions]):
    """Move bytes to and from the asset API; every request has its own connection."""

    options_class = AssetOptions
    capabilities = frozenset({base.Capability.ATOMIC_CREATE})

    def __init__(self, options: AssetOptions) -> None:
        super().__init__(options)
        if not options.api_url.startswith(("http://", "https://")) or not options.token:
            raise errors.ConfigurationError("Options 'api_url' (http or https) and 'token' needed.")
        self.retry = options.retry_policy()
        self.opener = build_opener(ProxyHandler({}))  # talk to the API itself, never a proxy

    def _open(self, method: str, path: str, what: str, ok: int = 0, **kwargs: Any) -> Any:
        """Send one request (retried when it sends no body); return its response."""
        url = self.options.api_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.options.token}", **kwargs.pop("headers", {})}

        def once() -> Any:
            with _ERRORS.translate(what):
                try:
                    request = Request(url, method=method, headers=headers, **kwargs)
                    return self.opener.open(request, timeout=self.options.timeout)
                except HTTPError as exc:
                    if exc.code != ok:
                        exc.close()
                        raise
                    return exc

        return self.retry.run(once, idempotent="data" not in kwargs)

    def put(
        self,
        key: str,
        stream: base.Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> base.ObjectInfo:
        """Stream ``stream`` up chunked; the API stores nothing unless the body arrives whole."""
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if if_absent:
            headers["If-None-Match"] = "*"
        with self._open("PUT", _path(key), f"writing {key!r}", data=stream, headers=headers) as r:
            return _object(json.load(r))

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> base.Download:
        """Stream bytes ``start`` to ``end`` of ``key`` with one ranged request."""
        if end is not None and end <= start:
            return base.Download(self.head(key), [])
        headers = {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        response = self._open("GET", _path(key), f"reading {key!r}", ok=416, headers=headers)
        info = _info(key, response.headers, response.headers["Content-Range"].split("/")[1])
        past_the_end = response.status == 416  # the range starts at or past the end

        def chunks() -> Iterator[bytes]:
            with errors.translate(f"reading {key!r}"):
                while chunk := response.read(_CHUNK):
                    yield chunk

        return base.Download(info, [] if past_the_end else chunks(), response.close)

    def head(self, key: str) -> base.ObjectInfo:
        """Describe ``key`` from the headers of a HEAD request."""
        with self._open("HEAD", _path(key), f"inspecting {key!r}") as response:
            return _info(key, response.headers, response.headers["Content-Length"])

    def delete(self, key: str) -> None:
        """Delete ``key``; the API's 404 for a missing key is not an error."""
        self._open("DELETE", _path(key), f"deleting {key!r}", ok=404).close()

    def list(
        self, prefix: str, *, recursive: bool = False
    ) -> Iterator[base.ObjectInfo | base.Prefix]:
        """Follow the listing's pages; with a delimiter the API groups subdirectories."""
        query = {"prefix": f"{prefix}/" if prefix else "", "delimiter": "" if recursive else "/"}
        while True:
            with self._open("GET", f"/assets?{urlencode(query)}", f"listing {prefix!r}") as r:
                page = json.load(r)
            yield from (_object(item) for item in page["assets"])
            yield from (base.Prefix(name.rstrip("/")) for name in page["prefixes"])
            if not page["cursor"]:
                return
            query["cursor"] = page["cursor"]


def _path(key: str) -> str:
    return "/assets/" + quote(key, safe="/")


def _info(key: str, headers: Any, size: str) -> base.ObjectInfo:
    modified = parsedate_to_datetime(headers["Last-Modified"])
    return base.ObjectInfo(key, int(size), modified, headers["ETag"], headers["Content-Type"])


def _object(item: dict[str, Any]) -> base.ObjectInfo:
    modified = dt.datetime.fromisoformat(item["modified"])
    return base.ObjectInfo(item["key"], item["size"], modified, item["etag"], item["content_type"])
