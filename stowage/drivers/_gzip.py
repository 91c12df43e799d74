"""Store bodies gzip-compressed (``Content-Encoding: gzip``) and read them back plain.

Drivers with a ``gzip`` option (S3, GCS) compress bodies of the configured
content types before upload and record the original size in the object's
metadata, so ``size()`` and reads see the file as it was saved. Reads inflate
the stored bytes from the start and skip to the requested range: compressed
bodies have no random access, and the types worth compressing (CSS,
JavaScript, SVG, JSON) are small.
"""

from __future__ import annotations

import dataclasses
import tempfile
import zlib
from collections.abc import Generator, Iterable, Mapping
from typing import IO, Final

from stowage.drivers.base import MiB, ObjectInfo, Readable

__all__ = [
    "DEFAULT_TYPES",
    "PLAIN_SIZE_KEY",
    "as_read",
    "compress",
    "inflate",
    "plain_size",
    "wants_gzip",
]

#: User-metadata key holding the original size of a gzip-compressed object.
PLAIN_SIZE_KEY: Final = "stowage-uncompressed-size"

#: Content types compressed by default (django-storages' list).
DEFAULT_TYPES: Final = (
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "image/svg+xml",
)

_SPOOL_MEMORY: Final = 4 * MiB
_BLOCK: Final = MiB


def wants_gzip(content_type: str | None, types: Iterable[str]) -> bool:
    """Tell whether a body of ``content_type`` is one to compress."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(base) and base in types


def compress(stream: Readable) -> tuple[IO[bytes], int]:
    """Compress ``stream`` into a spooled temporary file; return it (at 0) and the plain size.

    Memory stays bounded: the spool moves to disk past a few MiB.
    """
    import gzip  # only drivers compressing bodies need it

    spool = tempfile.SpooledTemporaryFile(_SPOOL_MEMORY)  # noqa: SIM115 - the caller closes it
    plain = 0
    try:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as compressor:
            while chunk := stream.read(_BLOCK):
                compressor.write(chunk)
                plain += len(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, plain


def plain_size(metadata: Mapping[str, str]) -> int | None:
    """Return the original size recorded in ``metadata``, if any."""
    value = metadata.get(PLAIN_SIZE_KEY)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def as_read(info: ObjectInfo) -> ObjectInfo:
    """Describe an object as a reader sees it: a compressed one at its original size.

    The size mark stays in the metadata: it is how a later read knows to inflate.
    """
    plain = plain_size(info.metadata)
    return info if plain is None else dataclasses.replace(info, size=plain)


def inflate(
    compressed: Iterable[bytes], start: int = 0, stop: int | None = None
) -> Generator[bytes, None, None]:
    """Yield the plain bytes ``[start, stop)`` of a gzip body arriving in ``compressed`` chunks.

    Output per step is bounded, so a small body cannot expand without limit in memory.
    """
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    skip = start
    left = -1 if stop is None else max(0, stop - start)

    def emit(data: bytes) -> bytes:
        nonlocal skip, left
        if skip:
            cut = min(skip, len(data))
            data, skip = data[cut:], skip - cut
        if left >= 0:
            data, left = data[:left], left - min(left, len(data))
        return data

    for chunk in compressed:
        pending = chunk
        while pending and left != 0:
            plain = decompressor.decompress(pending, _BLOCK)
            pending = decompressor.unconsumed_tail
            if out := emit(plain):
                yield out
        if left == 0:
            return
    if left != 0 and (out := emit(decompressor.flush())):
        yield out
