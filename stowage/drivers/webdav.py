"""Store files on a WebDAV server, over httpx.

Keys map to URLs below the ``url`` option; directories are real WebDAV
collections, made with MKCOL as uploads need them.

Why every upload is staged: a plain PUT writes straight into the target on
common servers (wsgidav's filesystem provider opens the target and writes
as the body arrives). A body that breaks mid-stream leaves a partial file,
and a PUT over an existing file has already truncated it. So ``put``
streams to a hidden temporary name (``.stowage-tmp-…``) in the target's
collection and then MOVEs it into place: ``Overwrite: T`` to replace,
``Overwrite: F`` for an atomic create (412 means the name is taken). A
failed upload deletes its temporary file; listings never show either kind
of hidden name (``.stowage-``).

Why atomic creates also take a lock: ``If-None-Match: *`` on PUT and
``Overwrite: F`` on MOVE are both answered by checking, then writing, on
wsgidav: eight simultaneous creates of one name gave two winners in 14 of
150 rounds with ``If-None-Match`` and in 1 of 150 with MOVE. An atomic
create therefore holds an exclusive WebDAV write lock on a hidden
``.stowage-lock`` resource of the target's collection for the length of its
MOVE (the lock manager grants it to one client at a time; others wait and
retry). With it, 150 rounds of eight gave exactly one winner each. The
lock only orders stowage's own creates; a server without locking (LOCK
answered 405 or 501) gets the plain ``Overwrite: F``.

Reads are ranged GETs streamed in chunks; a server that ignores ``Range``
is handled by skipping to the start. ``head`` is a PROPFIND of depth 0,
not a HEAD: a HEAD cannot tell a collection from an empty HTML file.
Listings parse PROPFIND (depth 1) multistatus answers; recursive listings
walk the collections. Copies are server-side (COPY to a temporary name,
then MOVE). ``cache_control`` and ``metadata`` are not stored.

One ``httpx.Client`` (thread-safe, pooled) serves the sync methods. An
``httpx.AsyncClient`` is bound to the event loop it first ran on and leaks
its sockets if its loop ends first, so each async operation opens and closes
its own (the requests of one operation share its connection; the TLS
context is built once per driver).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import os
import random
import secrets
import ssl
import threading
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit

import httpx
from django.utils.encoding import filepath_to_uri

from stowage.config import option
from stowage.drivers.base import (
    HIDDEN_PREFIX,
    LOCK_NAME,
    TEMP_PREFIX,
    AsyncDownload,
    Capability,
    Download,
    Driver,
    MiB,
    ObjectInfo,
    Prefix,
    Readable,
    in_thread,
)
from stowage.drivers.errors import ErrorTable, Rule
from stowage.drivers.options import NetworkOptions
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    IncompleteRead,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
    UnsupportedOperation,
)

__all__ = ["HIDDEN_PREFIX", "WebDAVDriver", "WebDAVOptions"]

_T = TypeVar("_T")

_TEMP_PREFIX = TEMP_PREFIX  # starts with HIDDEN_PREFIX
_LOCK_NAME = LOCK_NAME
_CHUNK = MiB
_LOCK_SECONDS = 30
_DAV = "{DAV:}"
_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"<D:getcontenttype/></D:prop></D:propfind>"
)
_LOCKINFO = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>stowage</D:owner></D:lockinfo>"
)
_XML = {"Content-Type": "application/xml; charset=utf-8"}
#: Methods a retry cannot make do anything twice (MKCOL and DELETE answer 405/404 instead).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "DELETE", "MKCOL"})
#: Answers worth retrying: the server or a proxy failed, not the request.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


def _check_url(name: str, value: str) -> str:
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


@dataclass(frozen=True)
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


# -- requests as data ---------------------------------------------------------------
#
# Each operation is written once, as a generator that yields the requests it
# needs and receives the responses; a sync and an async runner drive it.


class _Counted:
    """Read a stream in chunks and count the bytes."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.count = 0
        #: Where the stream started, if it can go back there (a spooled file can).
        self.start: int | None = None
        seekable = getattr(stream, "seekable", None)
        if seekable is not None and seekable():
            self.start = int(getattr(stream, "tell")())  # noqa: B009

    def read(self) -> bytes:
        chunk = self.stream.read(_CHUNK)
        self.count += len(chunk)
        return chunk

    def rewind(self) -> None:
        """Go back to the start of the stream, to send it again."""
        assert self.start is not None
        getattr(self.stream, "seek")(self.start)  # noqa: B009
        self.count = 0


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    url: str
    what: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    body: _Counted | None = None


@dataclass(frozen=True, slots=True)
class _Pause:
    seconds: float


_Flow = Generator[_Call | _Pause, Any, _T]


def _chunks(body: _Counted) -> Iterator[bytes]:
    while chunk := body.read():
        yield chunk


async def _achunks(body: _Counted) -> AsyncIterator[bytes]:
    while chunk := await in_thread(body.read):
        yield chunk


# -- errors -------------------------------------------------------------------------


def _status(exc: BaseException) -> int | None:
    return exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None


#: What each answer and each failure of httpx becomes; ``root`` is the server's URL.
_ERRORS = ErrorTable(
    Rule(
        401,
        AccessDenied,
        "{what}: the server refused the credentials ({detail}); "
        "check the 'username', 'password' and 'auth' options.",
    ),
    Rule(403, AccessDenied, "{what}: the server forbids it ({detail})."),
    Rule(404, NotFound, "{what}: not found ({detail})."),
    Rule(410, NotFound, "{what}: not found ({detail})."),
    Rule(range(300, 400), NotFound, "{what}: not a file ({detail}, a collection or a redirect)."),
    Rule(507, ServiceError, "{what}: the server has no space left ({detail})."),
    Rule(423, ServiceError, "{what}: the resource is locked ({detail})."),
    Rule(range(500, 1000), ServiceUnavailable, "{what}: the server failed ({detail})."),
    Rule(httpx.HTTPStatusError, ServiceError, "{what}: the server answered {detail}."),
    Rule(httpx.TimeoutException, ServiceTimeout, "{what}: {root} did not answer in time ({name})."),
    Rule(httpx.ConnectError, ServiceUnavailable, "{what}: cannot connect to {root}: {detail}"),
    Rule(
        httpx.StreamError,
        ServiceError,
        "{what}: the server asked to authenticate again during an upload ({detail}).",
    ),
    Rule(
        httpx.TransportError,
        ServiceUnavailable,
        "{what}: the connection to {root} failed: {detail}",
    ),
    status=_status,
)
#: The same while a body streams: a connection closed early is a short body.
_READ_ERRORS = _ERRORS.extend(
    Rule(
        httpx.RemoteProtocolError,
        IncompleteRead,
        "{what}: the body ended before its announced length ({detail}).",
    )
)


def _status_error(response: httpx.Response, what: str) -> StowageError:
    """Translate an unexpected status into stowage's tree, chained to an httpx error."""
    label = f"{response.status_code} {response.reason_phrase}".strip()
    error = httpx.HTTPStatusError(label, request=response.request, response=response)
    return _ERRORS.convert(error, what)


def _check(response: httpx.Response, what: str, *ok: int) -> httpx.Response:
    if response.status_code in (ok or (200, 201, 204)):
        return response
    raise _status_error(response, what)


# -- parsing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str
    collection: bool
    size: int
    modified: dt.datetime | None
    etag: str | None
    content_type: str | None


def _http_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _etag(text: str | None) -> str | None:
    if not text:
        return None
    return text.removeprefix("W/").strip('"') or None


def _text(props: Mapping[str, ET.Element], name: str) -> str | None:
    element = props.get(f"{_DAV}{name}")
    return None if element is None else (element.text or "").strip()


def _parse_multistatus(body: bytes, what: str) -> list[_Entry]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ServiceError(f"{what}: the server sent an unreadable listing ({exc}).") from exc
    entries = []
    for response in root.iter(f"{_DAV}response"):
        href = response.findtext(f"{_DAV}href") or ""
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(f"{_DAV}propstat"):
            if " 200 " not in f"{propstat.findtext(f'{_DAV}status') or ''} ":
                continue
            for prop in propstat.iter(f"{_DAV}prop"):
                props.update((child.tag, child) for child in prop)
        kind = props.get(f"{_DAV}resourcetype")
        length = _text(props, "getcontentlength")
        entries.append(
            _Entry(
                path=unquote(urlsplit(href.strip()).path),
                collection=kind is not None and kind.find(f"{_DAV}collection") is not None,
                size=int(length) if length and length.isdigit() else 0,
                modified=_http_time(_text(props, "getlastmodified")),
                etag=_etag(_text(props, "getetag")),
                content_type=_text(props, "getcontenttype") or None,
            )
        )
    return entries


def _info(key: str, entry: _Entry) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=entry.size,
        modified=entry.modified,
        etag=entry.etag,
        content_type=entry.content_type,
    )


def _parent(key: str) -> str:
    return key.rpartition("/")[0]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


# -- reads --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    """What a GET response means: the object's info, bytes to skip and to keep."""

    info: ObjectInfo
    skip: int
    keep: int | None


def _read_plan(key: str, response: httpx.Response, start: int, end: int | None) -> _ReadPlan:
    headers = response.headers
    content_range = headers.get("content-range", "")
    if response.status_code == 206 and "/" in content_range:
        total = content_range.rpartition("/")[2].strip()
        size = int(total) if total.isdigit() else start + int(headers.get("content-length", 0))
        skip = 0
    else:
        # The server ignored Range: the body is the whole object.
        size = int(headers.get("content-length", 0))
        skip = start
    keep = None if end is None else max(0, min(end, size) - start)
    info = ObjectInfo(
        key=key,
        size=size,
        modified=_http_time(headers.get("last-modified")),
        etag=_etag(headers.get("etag")),
        content_type=headers.get("content-type"),
    )
    return _ReadPlan(info, skip, keep)


class _Slicer:
    """Cut ``skip`` bytes off the front of a stream and stop after ``keep``."""

    def __init__(self, plan: _ReadPlan) -> None:
        self.skip = plan.skip
        self.keep = plan.keep

    def cut(self, chunk: bytes) -> bytes:
        if self.skip:
            dropped = min(self.skip, len(chunk))
            chunk = chunk[dropped:]
            self.skip -= dropped
        if self.keep is not None:
            chunk = chunk[: self.keep]
            self.keep -= len(chunk)
        return chunk

    @property
    def done(self) -> bool:
        return self.keep == 0


def _transport_failed(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError)


def _server_failed(response: httpx.Response) -> bool:
    return response.status_code in _RETRY_STATUSES


def _range_header(start: int, end: int | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if start or end is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    return headers


# -- the driver ---------------------------------------------------------------------


class WebDAVDriver(Driver[WebDAVOptions]):
    """Move bytes to and from one WebDAV collection."""

    options_class = WebDAVOptions
    claimed_options = frozenset({"base_url"})
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SERVER_COPY,
            Capability.PUBLIC_URL,
            Capability.REAL_DIRECTORIES,
        }
    )
    native_async = True
    max_part_bytes = 255

    def __init__(self, options: WebDAVOptions) -> None:
        super().__init__(options)
        self.root = options.url
        self._retry = options.retry_policy()
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._tls: ssl.SSLContext | bool | None = None
        self._auth: httpx.Auth | None = None
        if options.username:
            password = options.password or ""
            if options.auth == "digest":
                self._auth = httpx.DigestAuth(options.username, password)
            else:
                self._auth = httpx.BasicAuth(options.username, password)
        # Digest needs a challenge before a streamed body can be sent once.
        self._primed = options.auth != "digest"
        self._locking = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} url={self.root!r}>"

    # -- clients ----------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        if self._tls is None:
            # Built once: loading the CA bundle is the slow part of making a client.
            verify = self.options.verify
            if isinstance(verify, str):
                self._tls = ssl.create_default_context(cafile=verify)
            else:
                self._tls = httpx.create_ssl_context() if verify else False
        return {
            "auth": self._auth,
            "verify": self._tls,
            "timeout": httpx.Timeout(self.options.timeout),
            "headers": self.options.headers,
            "follow_redirects": False,
        }

    @property
    def client(self) -> httpx.Client:
        """Return the shared sync client, created on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(**self._client_options())
                    # Close the pooled sockets when the driver is dropped without close().
                    weakref.finalize(self, self._client.close)
        return self._client

    def _aclient(self) -> httpx.AsyncClient:
        # An async client belongs to the event loop it first ran on, and one left
        # open when its loop ends leaks its sockets: one client per operation.
        return httpx.AsyncClient(**self._client_options())

    def close(self) -> None:
        """Close the sync client; a new one is made on next use."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- runners ----------------------------------------------------------------------

    def _url(self, key: str, *, collection: bool = False) -> str:
        url = self.root + quote(key, safe="/")
        return url + "/" if collection and key else url

    def _repeatable(self, step: _Call) -> bool:
        """Tell whether ``step`` may be sent again here.

        A PUT goes to a fresh temporary name, so it may be sent again when its
        source can rewind; other bodies and methods are retried by their flows.
        """
        if step.body is not None:
            return step.body.start is not None
        return step.method in _IDEMPOTENT

    def _request(self, client: httpx.Client, step: _Call) -> httpx.Response:
        return self._retry.run(
            lambda: self._request_once(client, step),
            retryable=_transport_failed,
            idempotent=self._repeatable(step),
            retry_result=_server_failed,
            before_retry=None if step.body is None else step.body.rewind,
        )

    async def _arequest(self, client: httpx.AsyncClient, step: _Call) -> httpx.Response:
        return await self._retry.arun(
            lambda: self._arequest_once(client, step),
            retryable=_transport_failed,
            idempotent=self._repeatable(step),
            retry_result=_server_failed,
            before_retry=None if step.body is None else step.body.rewind,
        )

    def _request_once(self, client: httpx.Client, step: _Call) -> httpx.Response:
        content: Any = step.content
        if step.body is not None:
            if not self._primed:
                self._prime(client.request("OPTIONS", self.root), step.what)
            content = _chunks(step.body)
        return client.request(step.method, step.url, headers=step.headers, content=content)

    async def _arequest_once(self, client: httpx.AsyncClient, step: _Call) -> httpx.Response:
        content: Any = step.content
        if step.body is not None:
            if not self._primed:
                self._prime(await client.request("OPTIONS", self.root), step.what)
            content = _achunks(step.body)
        return await client.request(step.method, step.url, headers=step.headers, content=content)

    def _prime(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 401:
            raise _status_error(response, what)
        self._primed = True

    def _run(self, flow: _Flow[_T]) -> _T:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = reply = None
            try:
                if isinstance(step, _Pause):
                    time.sleep(step.seconds)
                else:
                    reply = self._request(self.client, step)
            except (httpx.HTTPError, httpx.StreamError) as exc:
                assert isinstance(step, _Call)
                error = _ERRORS.convert(exc, step.what, root=self.root)
            except Exception as exc:
                error = exc  # the source stream's own error, or a stowage one

    async def _arun(self, flow: _Flow[_T]) -> _T:
        async with self._aclient() as client:
            return await self._arun_on(client, flow)

    async def _arun_on(self, client: httpx.AsyncClient, flow: _Flow[_T]) -> _T:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = reply = None
            try:
                if isinstance(step, _Pause):
                    await asyncio.sleep(step.seconds)
                else:
                    reply = await self._arequest(client, step)
            except (httpx.HTTPError, httpx.StreamError) as exc:
                assert isinstance(step, _Call)
                error = _ERRORS.convert(exc, step.what, root=self.root)
            except Exception as exc:
                error = exc  # the source stream's own error, or a stowage one

    # -- flows ------------------------------------------------------------------------

    def _propfind(self, key: str, depth: str, what: str) -> _Flow[list[_Entry] | None]:
        """PROPFIND ``key``; None when it does not exist."""
        url = self._url(key, collection=depth == "1")
        headers = {**_XML, "Depth": depth}
        response = yield _Call("PROPFIND", url, what, headers, content=_PROPFIND)
        if response.status_code == 404:
            return None
        _check(response, what, 207)
        return _parse_multistatus(response.content, what)

    def _self_and_children(
        self, key: str, entries: list[_Entry]
    ) -> tuple[_Entry | None, list[_Entry]]:
        here = unquote(urlsplit(self._url(key)).path).rstrip("/")
        own = [e for e in entries if e.path.rstrip("/") == here]
        others = [
            e
            for e in entries
            if e.path.rstrip("/") != here
            and not e.path.rstrip("/").rpartition("/")[2].startswith(HIDDEN_PREFIX)
        ]
        return (own[0] if own else None), others

    def _head_flow(self, key: str) -> _Flow[ObjectInfo]:
        what = f"inspecting {key!r}"
        entries = yield from self._propfind(key, "0", what)
        if not entries:
            raise NotFound(f"{what}: not found.")
        entry = entries[0]
        if entry.collection:
            raise NotFound(f"{what}: it is a directory, not a file.")
        return _info(key, entry)

    def _stat_flow(self, key: str) -> _Flow[_Entry | None]:
        entries = yield from self._propfind(key, "0", f"inspecting {key!r}")
        return entries[0] if entries else None

    def _list_flow(self, prefix: str) -> _Flow[list[ObjectInfo | Prefix]]:
        what = f"listing {prefix!r}"
        entries = yield from self._propfind(prefix, "1", what)
        if entries is None:
            return []
        own, children = self._self_and_children(prefix, entries)
        if own is not None and not own.collection:
            return []
        found: list[ObjectInfo | Prefix] = []
        for entry in children:
            key = _join(prefix, entry.path.rstrip("/").rpartition("/")[2])
            found.append(Prefix(key) if entry.collection else _info(key, entry))
        return found

    def _delete_flow(self, key: str) -> _Flow[None]:
        what = f"deleting {key!r}"
        entries = yield from self._propfind(key, "1", what)
        if entries is None:
            return
        own, children = self._self_and_children(key, entries)
        if own is not None and own.collection and children:
            return  # a directory that still holds files is not a file to delete
        collection = own is not None and own.collection
        url = self._url(key, collection=collection)
        response = yield _Call("DELETE", url, what)
        _check(response, what, 200, 204, 404)

    def _mkcol_flow(self, collection: str) -> _Flow[None]:
        """Create ``collection`` and any missing parent collections."""
        missing: list[str] = []
        path = collection
        while True:
            response = yield _Call("MKCOL", self._url(path, collection=True), f"creating {path!r}")
            if response.status_code == 409 and path:
                missing.append(path)
                path = _parent(path)
                continue
            yield from self._made(path, response)
            break
        for path in reversed(missing):
            response = yield _Call("MKCOL", self._url(path, collection=True), f"creating {path!r}")
            yield from self._made(path, response)

    def _made(self, path: str, response: httpx.Response) -> _Flow[None]:
        # 405: it exists. Anything else may be a lost race with another MKCOL.
        if response.status_code in (201, 405):
            return
        entry = yield from self._stat_flow(path)
        if entry is None or not entry.collection:
            raise _status_error(response, f"creating {path!r}")

    def _refuse_file_in_the_way(self, collection: str) -> _Flow[None]:
        """Raise if ``collection`` or a parent of it is a file (MKCOL says 405 for those too)."""
        path = collection
        while path:
            entry = yield from self._stat_flow(path)
            if entry is not None and not entry.collection:
                raise ServiceError(
                    f"Cannot create the directory {path!r}: a file of that name is in "
                    "the way, and it is not a directory."
                )
            path = _parent(path)

    def _discard(self, key: str) -> _Flow[None]:
        # Best effort: the name is hidden from listings anyway.
        with contextlib.suppress(StowageError):
            yield _Call("DELETE", self._url(key), f"deleting {key!r}")

    def _lock_flow(self, collection: str) -> _Flow[str | None]:
        """Take the create lock of ``collection``; None if the server cannot lock."""
        if not self._locking:
            return None
        url = self._url(_join(collection, _LOCK_NAME))
        what = f"locking {collection or '/'!r} for a create"
        headers = {**_XML, "Depth": "0", "Timeout": f"Second-{_LOCK_SECONDS}"}
        # Long enough for a lock granted by a LOCK whose answer was lost to expire.
        deadline = time.monotonic() + self.options.timeout + _LOCK_SECONDS
        failures = 0
        while True:
            try:
                response = yield _Call("LOCK", url, what, headers, content=_LOCKINFO)
            except (ServiceUnavailable, ServiceTimeout):
                # wsgidav resets connections whose LOCK body it left unread.
                if failures == self._retry.retries:
                    raise
                failures += 1
                yield _Pause(self._retry.pause(failures - 1))
                continue
            if response.status_code in (200, 201) and response.headers.get("lock-token"):
                return str(response.headers["lock-token"])
            if response.status_code in (405, 501):
                self._locking = False
                return None
            if response.status_code != 423:
                raise _status_error(response, what)
            if time.monotonic() > deadline:
                raise ServiceTimeout(f"{what}: another client held the lock too long.")
            yield _Pause(random.uniform(0.002, 0.02))

    def _place_flow(self, temp: str, key: str, *, if_absent: bool) -> _Flow[None]:
        """MOVE the staged ``temp`` to ``key`` (only if ``key`` is free with ``if_absent``)."""
        what = f"writing {key!r}"
        headers = {"Destination": self._url(key), "Overwrite": "F" if if_absent else "T"}
        if not if_absent:
            # A MOVE that overwrites deletes a collection in the way, with all it holds.
            entry = yield from self._stat_flow(key)
            if entry is not None and entry.collection:
                raise ServiceError(f"Cannot write {key!r}: a directory of that name is in the way.")
            for _attempt in range(3):
                moved = yield from self._move_flow(temp, what, headers)
                if moved is None:
                    return
                response = moved
                # wsgidav answers concurrent replaces of one name with 207 or 500; retry.
                if response.status_code != 207 and response.status_code < 500:
                    break
                yield _Pause(random.uniform(0.01, 0.05))
            _check(response, what, 201, 204)
            return
        collection = _parent(key)
        token = yield from self._lock_flow(collection)
        try:
            moved = yield from self._move_flow(temp, what, headers)
        except Exception:
            if token is not None:
                yield from self._unlock_flow(collection, token)
            raise
        if token is not None:
            yield from self._unlock_flow(collection, token)
        if moved is None:
            return
        response = moved
        if response.status_code == 412:
            raise AlreadyExists(f"{key!r} already exists.")
        _check(response, what, 201, 204)

    def _move_flow(
        self, temp: str, what: str, headers: Mapping[str, str]
    ) -> _Flow[httpx.Response | None]:
        """MOVE ``temp``, again after a lost connection; None when an unanswered MOVE did it.

        Only this upload knows the temporary name: once it is gone, the MOVE
        whose answer was lost has moved it.
        """
        for attempt in range(self._retry.attempts):
            try:
                response: httpx.Response = yield _Call("MOVE", self._url(temp), what, headers)
            except (ServiceUnavailable, ServiceTimeout):
                if attempt == self._retry.retries:
                    raise
                yield _Pause(self._retry.pause(attempt))
                continue
            if attempt and response.status_code == 404:
                return None
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _unlock_flow(self, collection: str, token: str) -> _Flow[None]:
        url = self._url(_join(collection, _LOCK_NAME))
        # The lock also expires on the server by itself.
        with contextlib.suppress(StowageError):
            yield _Call("UNLOCK", url, f"unlocking {collection or '/'!r}", {"Lock-Token": token})

    def _put_flow(
        self, key: str, body: _Counted, content_type: str | None, *, if_absent: bool
    ) -> _Flow[ObjectInfo]:
        collection = _parent(key)
        if collection:
            yield from self._mkcol_flow(collection)
        temp = _join(collection, f"{_TEMP_PREFIX}{secrets.token_hex(16)}")
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            response = yield _Call("PUT", self._url(temp), f"writing {key!r}", headers, body=body)
            if response.status_code == 409:
                yield from self._refuse_file_in_the_way(collection)
            _check(response, f"writing {key!r}")
            yield from self._place_flow(temp, key, if_absent=if_absent)
        except Exception:
            yield from self._discard(temp)
            raise
        return ObjectInfo(
            key=key,
            size=body.count,
            modified=dt.datetime.now(dt.UTC),
            content_type=content_type,
        )

    def _copy_flow(self, src: str, dst: str) -> _Flow[ObjectInfo]:
        what = f"copying {src!r}"
        collection = _parent(dst)
        if collection:
            yield from self._mkcol_flow(collection)
        temp = _join(collection, f"{_TEMP_PREFIX}{secrets.token_hex(16)}")
        headers = {"Destination": self._url(temp), "Overwrite": "T", "Depth": "0"}
        try:
            response = yield _Call("COPY", self._url(src), what, headers)
            _check(response, what, 201, 204)
            yield from self._place_flow(temp, dst, if_absent=False)
        except Exception:
            yield from self._discard(temp)
            raise
        return (yield from self._head_flow(dst))

    # -- the contract -----------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Stream to a hidden temporary name, then MOVE it into place."""
        body = _Counted(stream)
        return self._run(self._put_flow(key, body, content_type, if_absent=if_absent))

    def _open(self, key: str, start: int, end: int | None, what: str) -> httpx.Response | None:
        """Send a ranged GET, retried as configured; None when the range lies past the end."""

        def send() -> httpx.Response:
            request = self.client.build_request(
                "GET", self._url(key), headers=_range_header(start, end)
            )
            response = self.client.send(request, stream=True)
            if response.status_code not in (200, 206):
                response.close()
            return response

        with _ERRORS.translate(what, root=self.root):
            response = self._retry.run(
                send, retryable=_transport_failed, retry_result=_server_failed
            )
        if response.status_code == 416:
            return None
        if response.status_code in (200, 206):
            return response
        raise _status_error(response, what)

    def _resume(
        self, key: str, first: _ReadPlan, position: int, end: int | None, what: str
    ) -> tuple[httpx.Response, _ReadPlan]:
        """Request the rest of a read cut at ``position``, refusing a changed object."""
        response = self._open(key, position, end, what)
        if response is None:
            raise IncompleteRead(f"{what}: the object ended at byte {position} when resumed.")
        plan = _read_plan(key, response, position, end)
        if plan.info.etag != first.info.etag or plan.info.size != first.info.size:
            response.close()
            raise IncompleteRead(f"{what}: the object changed while it was read.")
        return response, plan

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` with one ranged GET (skipping ahead if Range is ignored).

        A body cut mid-way is requested again from where it stopped, up to
        ``max_retries`` times, then raises :class:`IncompleteRead`.
        """
        if end is not None and end <= start:
            return Download(self.head(key), [])
        what = f"reading {key!r}"
        opened = self._open(key, start, end, what)
        if opened is None:
            return Download(self.head(key), [])
        response = opened
        plan = _read_plan(key, response, start, end)
        root = self.root

        def chunks() -> Iterator[bytes]:
            nonlocal response
            slicer, position, resumes = _Slicer(plan), start, 0
            try:
                while True:
                    try:
                        for chunk in response.iter_bytes(_CHUNK):
                            if part := slicer.cut(chunk):
                                position += len(part)
                                yield part
                            if slicer.done:
                                return
                        return
                    except httpx.HTTPError as exc:
                        if resumes == self._retry.retries:
                            raise _READ_ERRORS.convert(exc, what, root=root) from exc
                        resumes += 1
                    response.close()
                    time.sleep(self._retry.pause(resumes - 1))
                    response, resumed = self._resume(key, plan, position, end, what)
                    slicer = _Slicer(resumed)
            finally:
                response.close()

        return Download(plan.info, chunks(), lambda: response.close())

    def head(self, key: str) -> ObjectInfo:
        """Describe ``key`` with a PROPFIND of depth 0."""
        return self._run(self._head_flow(key))

    def delete(self, key: str) -> None:
        """Delete the file at ``key``, or the directory if it holds no file."""
        self._run(self._delete_flow(key))

    def exists(self, key: str) -> bool:
        """Tell whether a file or a collection exists at ``key``."""
        return self._run(self._stat_flow(key)) is not None

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a collection."""
        entry = self._run(self._stat_flow(key))
        return entry is not None and entry.collection

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List one collection with PROPFIND, or walk every collection below it."""
        pending = [prefix]
        while pending:
            for entry in self._run(self._list_flow(pending.pop())):
                if recursive and isinstance(entry, Prefix):
                    pending.append(entry.key)
                elif not recursive or isinstance(entry, ObjectInfo):
                    yield entry

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """COPY on the server to a hidden name, then MOVE it over ``dst``."""
        return self._run(self._copy_flow(src, dst))

    def public_url(self, key: str) -> str:
        """Return ``base_url`` joined with ``key``, or refuse without ``base_url``."""
        if self.options.base_url is None:
            raise UnsupportedOperation(
                "The WebDAV storage has no public URL: set its 'base_url' option to "
                "the address that serves the 'url' collection to browsers."
            )
        return self.options.base_url + filepath_to_uri(key)

    # -- async twins ------------------------------------------------------------------

    async def aput(self, key: str, stream: Readable, **kwargs: Any) -> ObjectInfo:
        """Do :meth:`put` on the async client."""
        body = _Counted(stream)
        flow = self._put_flow(
            key, body, kwargs.get("content_type"), if_absent=bool(kwargs.get("if_absent"))
        )
        return await self._arun(flow)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` on the async client, streaming the body."""
        if end is not None and end <= start:
            return AsyncDownload(await self.ahead(key), _nothing())
        what = f"reading {key!r}"
        client = self._aclient()
        request = client.build_request("GET", self._url(key), headers=_range_header(start, end))
        try:
            with _ERRORS.translate(what, root=self.root):
                response = await client.send(request, stream=True)
        except BaseException:
            await client.aclose()
            raise

        async def close() -> None:
            try:
                await response.aclose()
            finally:
                await client.aclose()

        if response.status_code == 416:
            await close()
            return AsyncDownload(await self.ahead(key), _nothing())
        if response.status_code not in (200, 206):
            await close()
            raise _status_error(response, what)
        plan = _read_plan(key, response, start, end)
        root = self.root

        async def chunks() -> AsyncIterator[bytes]:
            slicer = _Slicer(plan)
            try:
                async for chunk in response.aiter_bytes(_CHUNK):
                    if part := slicer.cut(chunk):
                        yield part
                    if slicer.done:
                        return
            except httpx.HTTPError as exc:
                raise _READ_ERRORS.convert(exc, what, root=root) from exc
            finally:
                await close()

        return AsyncDownload(plan.info, chunks(), close)

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` on the async client."""
        return await self._arun(self._head_flow(key))

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` on the async client."""
        return await self._arun(self._stat_flow(key)) is not None

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` on the async client."""
        await self._arun(self._delete_flow(key))

    async def alist(self, prefix: str, *, recursive: bool = False) -> Sequence[ObjectInfo | Prefix]:
        """Do :meth:`list` on the async client (the whole listing)."""
        found: list[ObjectInfo | Prefix] = []
        pending = [prefix]
        while pending:
            for entry in await self._arun(self._list_flow(pending.pop())):
                if recursive and isinstance(entry, Prefix):
                    pending.append(entry.key)
                elif not recursive or isinstance(entry, ObjectInfo):
                    found.append(entry)
        return found


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
