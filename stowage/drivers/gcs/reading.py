"""Read objects: their metadata, and their bytes by ranged requests.

A short ranged read is one request whose answer tells the size when the
object ends inside the range; otherwise the object's metadata comes first,
then ranged requests of at most ``blob_chunk_size`` bytes, each pinned to
the generation the metadata named so a concurrent replacement fails the
read instead of mixing two versions. Each request is retried on its own,
under the retry policy.

A gzip-compressed object (``Content-Encoding: gzip``) is read as stored and
inflated here, by range; its size is the original size, kept in its
metadata by the driver that wrote it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

from stowage.drivers import _gzip
from stowage.drivers.base import Download, ObjectInfo
from stowage.drivers.gcs.connection import Connection
from stowage.drivers.gcs.json_api import ApiError
from stowage.exceptions import NotFound, ServiceError

__all__ = ["Reader", "resource_info"]


def resource_info(resource: dict[str, Any], *, size: int | None = None) -> ObjectInfo:
    """Describe an object from its JSON API resource; ``size`` if known better."""
    metadata = dict(resource.get("metadata") or {})
    plain = metadata.pop(_gzip.PLAIN_SIZE_KEY, None)
    if size is None:
        gzipped = resource.get("contentEncoding") == "gzip"
        known = plain if gzipped and isinstance(plain, str) and plain.isdigit() else None
        size = int(known or resource.get("size") or 0)
    return ObjectInfo(
        key=resource["name"],
        size=size,
        modified=_timestamp(resource.get("updated")),
        etag=resource.get("etag"),
        content_type=resource.get("contentType"),
        cache_control=resource.get("cacheControl"),
        created=_timestamp(resource.get("timeCreated")),
        metadata=metadata,
    )


def _timestamp(value: object) -> dt.datetime | None:
    """Parse an RFC 3339 time of the JSON API (Python 3.11 reads the "Z" suffix)."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


class Reader:
    """Read objects of one bucket, ``chunk`` bytes per request at most.

    Metadata and bytes are read through the connection's
    :class:`~stowage.drivers.gcs.json_api.JsonApi`; an object is described
    by its JSON API resource (a dict).
    """

    def __init__(self, connection: Connection, chunk: int) -> None:
        self._conn = connection
        self._chunk = chunk

    def metadata(self, key: str) -> dict[str, Any]:
        """Return the resource of the object at ``key``, or raise NotFound."""
        if not key:
            raise NotFound("The bucket root is not an object.")
        conn = self._conn
        path, query = conn.path_of(key)
        query["projection"] = "noAcl"
        return conn.call(conn.what("inspecting", key), lambda: conn.json.get(path, query))

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored at ``key``."""
        try:
            self.metadata(key)
        except NotFound:
            return False
        return True

    def plain_size(self, resource: dict[str, Any]) -> int:
        """Return the size a reader gets: the original size of a gzip-compressed object."""
        stored = int(resource.get("size") or 0)
        if resource.get("contentEncoding") != "gzip":
            return stored
        known = _gzip.plain_size(resource.get("metadata") or {})
        if known is not None:
            return known
        if stored < 18:
            return 0
        # Written by another client: the gzip trailer holds the size modulo 2**32.
        trailer = self._download(resource, stored - 4, stored)
        return int.from_bytes(trailer, "little")

    def get(self, key: str, start: int, end: int | None) -> Download:
        """Read ``key`` from ``start`` to ``end`` (the end of the object for None)."""
        if end is not None and 0 < end - start <= self._chunk and key:
            quick = self._get_small(key, start, end)
            if quick is not None:
                return quick
        resource = self.metadata(key)
        size = self.plain_size(resource)
        info = resource_info(resource, size=size)
        stop = size if end is None else min(end, size)
        if start >= stop:
            return Download(info, iter(()))
        if resource.get("contentEncoding") == "gzip":
            stored = int(resource.get("size") or 0)
            chunks = _gzip.inflate(self._chunks(resource, 0, stored), start, stop)
        else:
            chunks = self._chunks(resource, start, stop)
        return Download(info, chunks, chunks.close)

    def _get_small(self, key: str, start: int, end: int) -> Download | None:
        """Read a range in one request, then the metadata only if the object goes on.

        Return None when the range must be read the long way: it starts past
        the end, the object is stored compressed, or it was replaced between
        the two requests.
        """
        conn = self._conn
        path, query = conn.path_of(key)
        byte_range = f"bytes={start}-{end - 1}"
        try:
            answer = conn.call(
                conn.what("reading", key), lambda: conn.json.media(path, query, byte_range)
            )
        except ServiceError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiError) and cause.code == 416:
                return None  # the range starts past the end
            raise
        headers = answer.headers
        if headers.get("x-goog-stored-content-encoding", "identity") == "gzip":
            return None
        data = answer.body
        chunks = iter((data,)) if data else iter(())
        if len(data) < end - start:
            # The object ends inside the range: that tells its size.
            info = ObjectInfo(
                key=key,
                size=start + len(data),
                etag=(headers.get("ETag") or "").strip('"') or None,
                content_type=headers.get("Content-Type"),
                cache_control=headers.get("Cache-Control"),
            )
            return Download(info, chunks)
        meta = self.metadata(key)
        generation = headers.get("x-goog-generation")
        if generation is not None and str(meta.get("generation")) != generation:
            return None
        return Download(resource_info(meta), chunks)

    def _chunks(
        self, resource: dict[str, Any], start: int, stop: int
    ) -> Generator[bytes, None, None]:
        position = start
        while position < stop:
            want = min(self._chunk, stop - position)
            data = self._download(resource, position, position + want)
            if data:
                yield data
            if len(data) < want:
                return  # cut short: the reader sees the missing bytes and resumes
            position += want

    def _download(self, resource: dict[str, Any], start: int, stop: int) -> bytes:
        """Fetch the stored bytes [start, stop) of the generation ``resource`` describes."""
        conn = self._conn
        key = resource["name"]
        path, query = conn.path_of(key)
        if resource.get("generation"):
            query["ifGenerationMatch"] = str(resource["generation"])
        byte_range = f"bytes={start}-{stop - 1}"
        answer = conn.call(
            conn.what("reading", key), lambda: conn.json.media(path, query, byte_range)
        )
        return answer.body
