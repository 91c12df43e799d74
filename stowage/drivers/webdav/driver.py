"""The WebDAV driver: each method runs one flow, on the sync runner or on the async one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import quote

import httpx

from stowage.drivers.base import (
    URL_SAFE,
    AsyncDownload,
    Capability,
    Download,
    Driver,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.drivers.webdav.connection import Connection
from stowage.drivers.webdav.flows import Flows, Walk
from stowage.drivers.webdav.locking import CreateLock
from stowage.drivers.webdav.options import WebDAVOptions
from stowage.drivers.webdav.runners import AsyncRunner, SyncRunner
from stowage.drivers.webdav.staging import StagedWrites
from stowage.drivers.webdav.steps import Body
from stowage.exceptions import UnsupportedOperation

__all__ = ["WebDAVDriver"]


class WebDAVDriver(Driver[WebDAVOptions]):
    """Move bytes to and from one WebDAV collection.

    ``cache_control`` and ``metadata`` are not stored.
    """

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
        retry = options.retry_policy()
        self._connection = Connection(options)
        self._flows = Flows(options.url, retry)
        lock = CreateLock(self._flows, retry, timeout=options.timeout)
        self._writes = StagedWrites(self._flows, lock, retry)
        self._sync = SyncRunner(self._connection, retry)
        self._async = AsyncRunner(self._connection, retry)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} url={self.root!r}>"

    @property
    def client(self) -> httpx.Client:
        """Return the shared sync client, created on first use."""
        return self._connection.client

    def close(self) -> None:
        """Close the sync client; a new one is made on next use."""
        self._connection.close()

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
        flow = self._writes.put(key, Body(stream), content_type, if_absent=if_absent)
        return self._sync.run(flow)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` with one ranged GET (skipping ahead if Range is ignored).

        A body cut mid-way is requested again from where it stopped, up to
        ``max_retries`` times, then raises :class:`IncompleteRead`.
        """
        return self._sync.download(self._flows.read(key, start, end))

    def head(self, key: str) -> ObjectInfo:
        """Describe ``key`` with a PROPFIND of depth 0."""
        return self._sync.run(self._flows.head(key))

    def delete(self, key: str) -> None:
        """Delete the file at ``key``, or the directory if it holds no file."""
        self._sync.run(self._flows.delete(key))

    def exists(self, key: str) -> bool:
        """Tell whether a file or a collection exists at ``key``."""
        return self._sync.run(self._flows.exists(key))

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a collection."""
        return self._sync.run(self._flows.is_dir(key))

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List one collection with PROPFIND, or walk every collection below it."""
        walk = Walk(prefix, recursive=recursive)
        for collection in walk:
            yield from walk.found(self._sync.run(self._flows.listing(collection)))

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """COPY on the server to a hidden name, then MOVE it over ``dst``."""
        return self._sync.run(self._writes.copy(src, dst))

    def public_url(self, key: str) -> str:
        """Return ``base_url`` joined with ``key``, or refuse without ``base_url``."""
        if self.options.base_url is None:
            raise UnsupportedOperation(
                "The WebDAV storage has no public URL: set its 'base_url' option to "
                "the address that serves the 'url' collection to browsers."
            )
        return self.options.base_url + quote(key, safe=URL_SAFE)

    # -- async twins: the same flows on the async runner ------------------------------

    async def aput(
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
        """Do :meth:`put` on the async client."""
        flow = self._writes.put(key, Body(stream), content_type, if_absent=if_absent)
        return await self._async.run(flow)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` on the async client, streaming the body."""
        return await self._async.download(self._flows.read(key, start, end))

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` on the async client."""
        return await self._async.run(self._flows.head(key))

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` on the async client."""
        return await self._async.run(self._flows.exists(key))

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` on the async client."""
        await self._async.run(self._flows.delete(key))

    async def alist(self, prefix: str, *, recursive: bool = False) -> Sequence[ObjectInfo | Prefix]:
        """Do :meth:`list` on the async client (the whole listing)."""
        walk = Walk(prefix, recursive=recursive)
        found: list[ObjectInfo | Prefix] = []
        for collection in walk:
            found += walk.found(await self._async.run(self._flows.listing(collection)))
        return found
