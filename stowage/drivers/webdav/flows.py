"""Write each WebDAV operation that needs no staging once, as a flow both runners drive.

Keys map to URLs below the ``url`` option; directories are real WebDAV
collections, made with MKCOL as uploads need them. A listing is a PROPFIND
of depth 1; a recursive listing walks the collections (:class:`Walk`).
Uploads and copies, staged and then moved, are in
:mod:`stowage.drivers.webdav.staging`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

import httpx

from stowage.drivers.base import HIDDEN_PREFIX, ObjectInfo, Prefix
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.errors import expect, status_error
from stowage.drivers.webdav.multistatus import PROPFIND_BODY, Resource, parse_multistatus
from stowage.drivers.webdav.reads import Reading
from stowage.drivers.webdav.steps import XML_HEADERS, Call, Flow
from stowage.exceptions import NotFound, StowageError

__all__ = ["Flows", "Walk", "child", "parent"]


def parent(key: str) -> str:
    """Return the key of the collection holding ``key`` ("" for the root)."""
    return key.rpartition("/")[0]


def child(collection: str, name: str) -> str:
    """Return the key of ``name`` inside ``collection``."""
    return f"{collection}/{name}" if collection else name


class Flows:
    """Build the flows of reads, listings, deletes and collections below ``root``."""

    def __init__(self, root: str, retry: RetryPolicy) -> None:
        self.root = root
        self.retry = retry

    def url(self, key: str, *, collection: bool = False) -> str:
        """Return the URL of ``key``, with a trailing slash for a ``collection``."""
        url = self.root + quote(key, safe="/")
        return url + "/" if collection and key else url

    def head(self, key: str) -> Flow[ObjectInfo]:
        """Describe the file at ``key`` with a PROPFIND of depth 0.

        Not a HEAD: a HEAD cannot tell a collection from an empty HTML file.
        """
        what = f"inspecting {key!r}"
        resources = yield from self._propfind(key, "0", what)
        if not resources:
            raise NotFound(f"{what}: not found.")
        resource = resources[0]
        if resource.collection:
            raise NotFound(f"{what}: it is a directory, not a file.")
        return resource.info(key)

    def stat(self, key: str) -> Flow[Resource | None]:
        """Describe the file or collection at ``key``; None when there is none."""
        resources = yield from self._propfind(key, "0", f"inspecting {key!r}")
        return resources[0] if resources else None

    def exists(self, key: str) -> Flow[bool]:
        """Tell whether a file or a collection exists at ``key``."""
        return (yield from self.stat(key)) is not None

    def is_dir(self, key: str) -> Flow[bool]:
        """Tell whether ``key`` is a collection."""
        resource = yield from self.stat(key)
        return resource is not None and resource.collection

    def listing(self, prefix: str) -> Flow[list[ObjectInfo | Prefix]]:
        """List the files and collections directly inside the collection ``prefix``."""
        what = f"listing {prefix!r}"
        resources = yield from self._propfind(prefix, "1", what)
        if resources is None:
            return []
        own, children = self._self_and_children(prefix, resources)
        if own is not None and not own.collection:
            return []
        found: list[ObjectInfo | Prefix] = []
        for resource in children:
            key = child(prefix, resource.path.rstrip("/").rpartition("/")[2])
            found.append(Prefix(key) if resource.collection else resource.info(key))
        return found

    def delete(self, key: str) -> Flow[None]:
        """Delete the file at ``key``, or the collection if it holds nothing."""
        what = f"deleting {key!r}"
        resources = yield from self._propfind(key, "1", what)
        if resources is None:
            return
        own, children = self._self_and_children(key, resources)
        if own is not None and own.collection and children:
            return  # a directory that still holds files is not a file to delete
        collection = own is not None and own.collection
        response = yield Call("DELETE", self.url(key, collection=collection), what)
        expect(response, what, 200, 204, 404)

    def discard(self, *keys: str) -> Flow[None]:
        """Delete stowage's own hidden files, best effort: listings never show them anyway."""
        for key in keys:
            with contextlib.suppress(StowageError):
                yield Call("DELETE", self.url(key), f"deleting {key!r}")

    def read(self, key: str, start: int, end: int | None) -> Flow[Reading]:
        """Open a ranged read of ``key``; a range holding no byte is described by :meth:`head`."""
        reading = Reading(self.url(key), key, end, retry=self.retry, root=self.root)
        if (end is None or start < end) and (yield from reading.open(start)):
            return reading
        reading.info = yield from self.head(key)
        return reading

    def make_collections(self, collection: str) -> Flow[None]:
        """Create ``collection`` and any missing parent collections."""
        missing: list[str] = []
        path = collection
        while True:
            response = yield Call("MKCOL", self.url(path, collection=True), f"creating {path!r}")
            if response.status_code == 409 and path:
                missing.append(path)
                path = parent(path)
                continue
            yield from self._made(path, response)
            break
        for path in reversed(missing):
            response = yield Call("MKCOL", self.url(path, collection=True), f"creating {path!r}")
            yield from self._made(path, response)

    def _made(self, path: str, response: httpx.Response) -> Flow[None]:
        # 405: it exists. Anything else may be a lost race with another MKCOL.
        if response.status_code in (201, 405):
            return
        resource = yield from self.stat(path)
        if resource is None or not resource.collection:
            raise status_error(response, f"creating {path!r}")

    def _propfind(self, key: str, depth: str, what: str) -> Flow[list[Resource] | None]:
        """PROPFIND ``key``; None when it does not exist."""
        url = self.url(key, collection=depth == "1")
        headers = {**XML_HEADERS, "Depth": depth}
        response = yield Call("PROPFIND", url, what, headers, content=PROPFIND_BODY)
        if response.status_code == 404:
            return None
        expect(response, what, 207)
        return parse_multistatus(response.content, what)

    def _self_and_children(
        self, key: str, resources: list[Resource]
    ) -> tuple[Resource | None, list[Resource]]:
        """Split a depth-1 answer into ``key`` itself and what it holds, hidden names left out."""
        here = unquote(urlsplit(self.url(key)).path).rstrip("/")
        own = [r for r in resources if r.path.rstrip("/") == here]
        others = [
            r
            for r in resources
            if r.path.rstrip("/") != here
            and not r.path.rstrip("/").rpartition("/")[2].startswith(HIDDEN_PREFIX)
        ]
        return (own[0] if own else None), others


class Walk:
    """Walk the collections below a prefix, one listing (a PROPFIND each) at a time."""

    def __init__(self, prefix: str, *, recursive: bool) -> None:
        self.recursive = recursive
        self._pending = [prefix]

    def __iter__(self) -> Iterator[str]:
        """Yield the next collection to list while any is left."""
        while self._pending:
            yield self._pending.pop()

    def found(self, entries: list[ObjectInfo | Prefix]) -> list[ObjectInfo | Prefix]:
        """Return what to report of one collection's ``entries``; recursive walks go inside."""
        if not self.recursive:
            return entries
        self._pending.extend(e.key for e in entries if isinstance(e, Prefix))
        return [e for e in entries if isinstance(e, ObjectInfo)]
