"""Bodies sent to obstore and the objects it answers with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from stowage.drivers.base import (
    MiB,
    ObjectInfo,
    Readable,
)

__all__ = ["HEADER_ATTRIBUTES", "Source", "etag_of", "object_info", "read_up_to", "written"]

#: Attributes obstore maps to HTTP headers; any other attribute is user metadata.
HEADER_ATTRIBUTES = frozenset(
    {
        "Cache-Control",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Type",
        "Storage-Class",
    }
)


def object_info(meta: Mapping[str, Any], attributes: Mapping[str, Any] | None = None) -> ObjectInfo:
    """Describe an object from obstore's metadata and attributes (headers and user metadata)."""
    attributes = attributes or {}
    metadata = {
        k: str(v)
        for k, v in attributes.items()
        if k not in HEADER_ATTRIBUTES and k != "Content-Type"
    }
    etag = meta.get("e_tag")
    return ObjectInfo(
        key=str(meta["path"]),
        size=int(meta["size"]),
        modified=meta.get("last_modified"),
        etag=etag.strip('"') if isinstance(etag, str) else None,
        content_type=attributes.get("Content-Type"),
        cache_control=attributes.get("Cache-Control"),
        metadata=metadata,
    )


def written(key: str, size: int, result: Any, attributes: Mapping[str, str]) -> ObjectInfo:
    """Describe an object just written in one PUT, sync or async alike."""
    return ObjectInfo(
        key=key,
        size=size,
        etag=etag_of(result),
        content_type=attributes.get("Content-Type"),
        modified=dt.datetime.now(dt.UTC),
    )


class Source:
    """Iterate a reader's chunks for obstore, keeping the error the reader raised."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._stream.read(MiB):
                yield chunk
        except Exception as exc:
            self.error = exc
            raise


def read_up_to(stream: Readable, limit: int) -> bytes:
    """Read ``stream`` until it ends or ``limit`` bytes are in hand."""
    parts = []
    total = 0
    while total <= limit and (chunk := stream.read(min(MiB, limit + 1 - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def etag_of(result: Mapping[str, Any]) -> str | None:
    """Return the ETag of a put's result, without its quotes."""
    etag = result.get("e_tag")
    return etag.strip('"') if isinstance(etag, str) else None
