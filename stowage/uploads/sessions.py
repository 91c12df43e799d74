"""Upload sessions: one class per kind of backend, chosen by the storage.

A session starts an upload under a staging key the server chooses, tells
the browser how to send it, reports what is stored already (to resume),
verifies the result and aborts leftovers. The cloud sessions send the
browser straight to the service: :class:`~stowage.uploads.s3.S3Session`
(presigned multipart URLs), :class:`~stowage.uploads.gcs.GCSSession`
(a resumable upload session) and :class:`~stowage.uploads.azure.AzureSession`
(blocks under a SAS). :class:`TusSession` receives the chunks itself
(tus 1.0) and works on every storage. The first class of
:data:`SESSION_CLASSES` that supports a storage runs its uploads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import Storage as DjangoStorage

from stowage.exceptions import ServiceError
from stowage.uploads.azure import AzureSession
from stowage.uploads.base import (
    CloudSession,
    Leftover,
    RefusedUpload,
    Ticket,
    UploadSession,
    user_folder,
)
from stowage.uploads.config import UploadSettings
from stowage.uploads.gcs import GCSSession
from stowage.uploads.s3 import S3Session

__all__ = [
    "SESSION_CLASSES",
    "AzureSession",
    "CloudSession",
    "GCSSession",
    "Leftover",
    "RefusedUpload",
    "S3Session",
    "Ticket",
    "TusSession",
    "UploadSession",
    "session_for",
    "session_of_kind",
    "user_folder",
]


_WRITING: set[str] = set()
_WRITING_LOCK = threading.Lock()


@contextlib.contextmanager
def _writing_alone(handle: IO[bytes]) -> Iterator[None]:
    """Hold the staged file for one request; another one writing it gets a 409.

    An exclusive ``flock`` where the system has it (it covers every worker
    process on the machine sharing TEMP_DIR, and ends with the process),
    else a lock of this process.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        name = os.path.realpath(handle.name)
        with _WRITING_LOCK:
            if name in _WRITING:
                raise RefusedUpload("Another request is writing this upload.", 409) from None
            _WRITING.add(name)
        try:
            yield
        finally:
            with _WRITING_LOCK:
                _WRITING.discard(name)
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RefusedUpload("Another request is writing this upload.", 409) from None
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class TusSession(UploadSession):
    """Receive the file in Django in chunks (tus 1.0), then save it through the storage.

    Works on every storage. Chunks go to ``TEMP_DIR`` on the server's disk,
    which every worker must share; the bytes still pass through a worker,
    but in small resumable requests instead of one long one.
    """

    kind = "tus"

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Take every storage."""
        return True

    def path(self, ticket: Ticket) -> Path:
        """Return the local file holding the upload's bytes."""
        root = self.options.temp_dir()
        path = (root / ticket.key).resolve()
        if root.resolve() not in path.parents:
            raise RefusedUpload("Bad upload key.")
        return path

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Create the empty file that chunks are appended to."""
        path = self.path(ticket)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)
        return ticket

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Tell the browser the chunk size."""
        return {"kind": self.kind, "chunk_size": self.options.CHUNK_SIZE}

    def offset(self, ticket: Ticket) -> int:
        """Return how many bytes are stored."""
        try:
            return self.path(ticket).stat().st_size
        except FileNotFoundError as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """Report the offset reached."""
        return {"offset": self.offset(ticket)}

    def append(self, ticket: Ticket, offset: int, chunks: Iterator[bytes]) -> int:
        """Append ``chunks`` at ``offset`` (which must be the current size); return the new one."""
        path = self.path(ticket)
        if not path.exists():
            raise RefusedUpload("This upload is gone; start again.", 404)
        written = offset
        with path.open("ab") as handle, _writing_alone(handle):
            # Checked under the lock: two requests sending the same chunk (a browser
            # resending one it thinks lost) must not both append it.
            if offset != os.fstat(handle.fileno()).st_size:
                raise RefusedUpload("Upload-Offset does not match the stored size.", 409)
            for chunk in chunks:
                written += len(chunk)
                if written > ticket.size:
                    handle.truncate(offset)
                    raise RefusedUpload("The chunk goes past the declared Upload-Length.", 413)
                handle.write(chunk)
        return written

    def finish(self, ticket: Ticket) -> None:
        """Check every declared byte arrived."""
        self.verify(ticket)

    def verify(self, ticket: Ticket) -> None:
        """Check the staged file has exactly the declared size."""
        size = self.offset(ticket)
        if size != ticket.size or size > ticket.max_size:
            raise RefusedUpload(f"{size} of {ticket.size} bytes arrived.", 409)

    def abort(self, ticket: Ticket) -> None:
        """Delete the staged file and its folder."""
        shutil.rmtree(self.path(ticket).parent, ignore_errors=True)

    def commit(
        self, ticket: Ticket, storage: DjangoStorage, name: str, max_length: int | None
    ) -> str | None:
        """Save the staged file through ``storage`` (its own naming and create), then drop it."""
        from django.core.files.base import File

        with self.path(ticket).open("rb") as handle:
            content = File(handle, name=ticket.name)
            content.content_type = ticket.content_type  # type: ignore[attr-defined]
            chosen = storage.save(name, content, max_length=max_length)
        self.abort(ticket)
        return str(chosen)

    def leftovers(self) -> Iterator[Leftover]:
        """Yield staged files under TEMP_DIR's staging prefix."""
        root = self.options.temp_dir()
        for path in sorted((root / self.options.STAGING_PREFIX).glob("*/*/*")):
            modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            yield Leftover(self.kind, str(path.relative_to(root)), "", modified)

    def remove(self, leftover: Leftover) -> None:
        """Delete the staged file and its folder."""
        path = self.options.temp_dir() / leftover.key
        shutil.rmtree(path.parent, ignore_errors=True)


#: Session classes, most specific first; the first that supports a storage runs its uploads.
SESSION_CLASSES: list[type[UploadSession]] = [S3Session, GCSSession, AzureSession, TusSession]


def session_for(storage: DjangoStorage, alias: str, options: UploadSettings) -> UploadSession:
    """Return the session that uploads to ``storage``."""
    for cls in SESSION_CLASSES:
        if cls.supports(storage):
            return cls(storage, alias, options)
    raise ServiceError(f"No upload session supports storage {alias!r}.")  # pragma: no cover


def session_of_kind(
    kind: str, storage: DjangoStorage, alias: str, options: UploadSettings
) -> UploadSession:
    """Return the session of ``kind`` (the one a ticket was made by)."""
    for cls in SESSION_CLASSES:
        if cls.kind == kind and cls.supports(storage):
            return cls(storage, alias, options)
    raise RefusedUpload(f"Upload kind {kind!r} does not fit storage {alias!r}.")
