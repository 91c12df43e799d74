"""Prepare one save so the sync and async paths run the same algorithm.

A :class:`SavePlan` holds what a save needs whatever the I/O: the cleaned
name, the content's size and type, a fresh reader for each attempt (content
that cannot rewind is spooled once, so an atomic create that loses a race can
try the next name), and the bounded series of candidate names.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, cast

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File

from stowage import names
from stowage.drivers.base import ChunkReader, Readable

__all__ = ["MAX_ATTEMPTS", "SavePlan", "encoded_chunks", "new_spool"]

#: Alternative names tried before giving up (each collision is a round trip).
MAX_ATTEMPTS = 100


def new_spool(max_memory_size: int) -> tempfile.SpooledTemporaryFile[bytes]:
    """Return a spooled temporary file that spills to FILE_UPLOAD_TEMP_DIR.

    Spilled bodies are uploads in all but name: they go where Django puts
    uploaded files (the system's temporary directory when the setting is None).
    """
    return tempfile.SpooledTemporaryFile(max_memory_size, dir=settings.FILE_UPLOAD_TEMP_DIR)


def encoded_chunks(chunks: Iterable[bytes | str]) -> Iterator[bytes]:
    """Yield ``chunks`` as bytes, encoding str chunks (text content) as UTF-8."""
    for chunk in chunks:
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def _content_size(content: File[Any]) -> int | None:
    try:
        size = content.size
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    if not isinstance(size, int):
        return None
    if size == 0 and not _regular_file(content):
        return None  # a pipe or a socket: Django's size is its st_size, 0, whatever it holds
    return size


def _regular_file(content: File[Any]) -> bool:
    fileno = getattr(getattr(content, "file", None), "fileno", None)
    if not callable(fileno):
        return True
    try:
        return stat.S_ISREG(os.fstat(fileno()).st_mode)
    except (OSError, ValueError):
        return True


def _temporary_path(content: File[Any]) -> str | None:
    path = getattr(content, "temporary_file_path", None)
    if not callable(path):
        return None
    try:
        found = path()
    except (AttributeError, OSError, ValueError):
        return None
    return found if isinstance(found, str) else None


def _seekable(content: File[Any]) -> bool:
    try:
        return bool(content.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _is_binary(raw: Any) -> bool:
    if raw is None or isinstance(raw, io.TextIOBase):
        return False
    if isinstance(raw, (io.BufferedIOBase, io.RawIOBase)):
        return True
    mode = getattr(raw, "mode", "")
    return isinstance(mode, str) and "b" in mode


class SavePlan:
    """Everything about one save that does not depend on sync or async I/O."""

    def __init__(
        self,
        name: str,
        content: File[Any],
        *,
        content_type: str,
        overwrite: bool,
        atomic: bool,
        spool_threshold: int,
    ) -> None:
        self.name = name
        self.content = content
        self.content_type = content_type
        self.size = _content_size(content)
        #: Replace whatever is stored under the name.
        self.overwrite = overwrite
        # A collision costs a whole upload before the service refuses it, so
        # large bodies skip names already taken; the atomic put still decides.
        self.large = self.size is None or self.size > spool_threshold
        #: Look before each write: the driver's create is only best effort (not
        #: atomic), or the body is large.
        self.look_first = not atomic or self.large
        self._threshold = spool_threshold
        #: The file of an upload Django spooled to disk (TemporaryUploadedFile).
        self.temporary_path = _temporary_path(content)
        self._spool: IO[bytes] | None = None

    def reader(self) -> Readable:
        """Return a reader of the whole content, from its start, for one attempt."""
        if _seekable(self.content):
            raw = getattr(self.content, "file", None)
            if _is_binary(raw):
                # A binary file is handed over as it is: no chunk copying.
                self.content.seek(0)
                return cast(Readable, raw)
            return ChunkReader(encoded_chunks(self.content.chunks()))
        if self._spool is None:
            self._spool = new_spool(self._threshold)
            for chunk in encoded_chunks(self.content.chunks()):
                self._spool.write(chunk)
        self._spool.seek(0)
        return self._spool

    def put_kwargs(self, if_absent: bool) -> dict[str, Any]:
        """Return the keyword arguments of the driver's put for this content."""
        return {"size": self.size, "content_type": self.content_type, "if_absent": if_absent}

    def candidates(
        self, max_length: int | None, alternative: Callable[[str, str], str]
    ) -> Iterator[str]:
        """Yield the names to try, in Django's order, at most ``MAX_ATTEMPTS``.

        ``alternative(root, ext)`` makes each alternative base name (the
        storage's ``get_alternative_name``).
        """
        attempts = names.alternative_names(self.name, max_length, alternative)
        for _, candidate in zip(range(MAX_ATTEMPTS), attempts, strict=False):
            yield candidate

    def exhausted(self) -> SuspiciousFileOperation:
        """Return the error for a save that found no free name."""
        return SuspiciousFileOperation(
            f"Storage can not find an available filename for {self.name!r} after "
            f"{MAX_ATTEMPTS} attempts."
        )

    def close(self) -> None:
        """Drop the spool, if one was made."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
