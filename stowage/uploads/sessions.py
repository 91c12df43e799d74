"""Upload sessions: one class per kind of backend, chosen by the storage.

A session starts an upload under a staging key the server chooses, tells
the browser how to send it, reports what is stored already (to resume),
verifies the result and aborts leftovers. :class:`S3Session` sends the
browser to S3 with presigned multipart URLs; :class:`TusSession` receives
the chunks itself (tus 1.0) and works on every storage. GCS (resumable
uploads) and Azure (block blobs with SAS) slot in as further subclasses
listed in :data:`SESSION_CLASSES`.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.files.storage import Storage as DjangoStorage
from django.utils.crypto import salted_hmac
from django.utils.text import get_valid_filename

from stowage.exceptions import AlreadyExists, NotFound, ServiceError
from stowage.uploads.config import UploadSettings

if TYPE_CHECKING:
    from stowage.uploads.s3 import MultipartClient

__all__ = [
    "SESSION_CLASSES",
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

#: How many names an atomic create tries before giving up (as saves do).
MAX_ATTEMPTS = 100


class RefusedUpload(Exception):
    """Refuse an upload request; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Ticket:
    """Describe one upload: signed into the token the browser carries between calls."""

    alias: str
    kind: str
    key: str
    upload_id: str
    name: str
    size: int
    content_type: str
    user: str
    max_size: int

    def dump(self) -> dict[str, Any]:
        """Return the ticket as a short dict for signing."""
        return {
            "a": self.alias,
            "k": self.kind,
            "key": self.key,
            "id": self.upload_id,
            "n": self.name,
            "s": self.size,
            "t": self.content_type,
            "u": self.user,
            "m": self.max_size,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> Ticket:
        """Rebuild a ticket from :meth:`dump`'s dict."""
        return cls(
            data["a"],
            data["k"],
            data["key"],
            data["id"],
            data["n"],
            int(data["s"]),
            data["t"],
            data["u"],
            int(data["m"]),
        )


@dataclass(frozen=True)
class Leftover:
    """An upload started and never finished or never submitted."""

    kind: str
    key: str
    upload_id: str
    started: dt.datetime | None


def user_folder(user_pk: str) -> str:
    """Return the staging folder of a user: a keyed hash, so ids are not exposed."""
    return salted_hmac("stowage.uploads.user", user_pk).hexdigest()[:20]


def _staging_file_name(name: str) -> str:
    base = get_valid_filename(name.replace("\\", "/").rsplit("/", 1)[-1]) or "file"
    return base[-100:]


class UploadSession:
    """Run uploads of one kind of backend; subclasses name the kind."""

    kind: ClassVar[str] = ""

    def __init__(self, storage: DjangoStorage, alias: str, options: UploadSettings) -> None:
        self.storage = storage
        self.alias = alias
        self.options = options

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Tell whether this kind of session can upload to ``storage``."""
        raise NotImplementedError

    def staging_key(self, user_pk: str, name: str) -> str:
        """Return a fresh staging key for ``name``: per user, unguessable."""
        return (
            f"{self.options.STAGING_PREFIX}/{user_folder(user_pk)}/"
            f"{secrets.token_hex(12)}/{_staging_file_name(name)}"
        )

    def start(self, ticket: Ticket) -> Ticket:
        """Start the upload of ``ticket`` on the service; return it with its upload id."""
        raise NotImplementedError

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Return what the browser needs to send the file (kind, part or chunk size)."""
        raise NotImplementedError

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """Return what is stored already, for the browser to resume."""
        raise NotImplementedError

    def finish(self, ticket: Ticket) -> None:
        """Join what was sent and verify it, or raise :class:`RefusedUpload`."""
        raise NotImplementedError

    def abort(self, ticket: Ticket) -> None:
        """Drop the upload and whatever of it is stored."""
        raise NotImplementedError

    def verify(self, ticket: Ticket) -> None:
        """Check the staged file still has the size and type accepted at :meth:`finish`."""
        raise NotImplementedError

    def leftovers(self) -> Iterator[Leftover]:
        """Yield the unfinished uploads and unsubmitted staged files."""
        raise NotImplementedError

    def remove(self, leftover: Leftover) -> None:
        """Abort or delete ``leftover``."""
        raise NotImplementedError

    def commit(
        self, ticket: Ticket, storage: DjangoStorage, name: str, max_length: int | None
    ) -> str | None:
        """Move the staged file to ``name`` (or a free alternative) on the service.

        Return the name used, or None when the staged file must be streamed
        through the storage's own ``save`` (the default).
        """
        return None


class S3Session(UploadSession):
    """Upload to S3 with presigned multipart URLs, parts in parallel, resumable."""

    kind = "s3"

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Take stowage's S3 storages."""
        return getattr(storage, "driver_name", None) == "s3"

    @property
    def client(self) -> MultipartClient:
        """Return the multipart client of the storage's driver."""
        from stowage.uploads.s3 import MultipartClient

        return MultipartClient(self.storage.driver)  # type: ignore[attr-defined]

    def _key(self, name: str) -> str:
        return str(self.storage.key(name))  # type: ignore[attr-defined]

    def part_count(self, ticket: Ticket) -> int:
        """Return how many parts the declared size makes."""
        return max(1, math.ceil(ticket.size / self.options.PART_SIZE))

    def start(self, ticket: Ticket) -> Ticket:
        """Create the multipart upload, its Content-Type fixed by the server."""
        upload_id = self.client.create(self._key(ticket.key), ticket.content_type)
        return Ticket(**{**ticket.__dict__, "upload_id": upload_id})

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Tell the browser the part size and count."""
        return {
            "kind": self.kind,
            "part_size": self.options.PART_SIZE,
            "part_count": self.part_count(ticket),
        }

    def sign_parts(self, ticket: Ticket, numbers: list[int]) -> dict[int, str]:
        """Return presigned PUT URLs for the parts ``numbers``, valid for URL_EXPIRE.

        Each URL signs its part's planned Content-Length (the last part is the rest).
        """
        count = self.part_count(ticket)
        bad = [n for n in numbers if not 1 <= n <= count]
        if bad or not numbers or len(numbers) > 100:
            raise RefusedUpload(f"Part numbers must be 1 to {count}, at most 100 at a time.")
        expires = dt.timedelta(seconds=self.options.URL_EXPIRE)
        key, client, part = self._key(ticket.key), self.client, self.options.PART_SIZE
        return {
            n: client.sign_part(
                key, ticket.upload_id, n, min(part, ticket.size - (n - 1) * part), expires
            )
            for n in numbers
        }

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """List the parts stored (ListParts, by the server)."""
        try:
            parts = self.client.list_parts(self._key(ticket.key), ticket.upload_id)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        return {"stored": [{"number": p.number, "size": p.size} for p in parts]}

    def finish(self, ticket: Ticket) -> None:
        """Check the parts add up to the declared size, join them, and verify by HEAD."""
        key, client = self._key(ticket.key), self.client
        try:
            parts = client.list_parts(key, ticket.upload_id)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        total = sum(p.size for p in parts)
        numbers = [p.number for p in parts]
        if total > ticket.max_size or total > ticket.size:
            client.abort(key, ticket.upload_id)
            raise RefusedUpload("The parts sent exceed the declared size; upload refused.", 413)
        if total != ticket.size or numbers != list(range(1, self.part_count(ticket) + 1)):
            raise RefusedUpload("Some parts are still missing.", 409)
        client.complete(key, ticket.upload_id, parts)
        self.verify(ticket)

    def verify(self, ticket: Ticket) -> None:
        """HEAD the staged object: its size and Content-Type must be the ones accepted."""
        key = self._key(ticket.key)
        driver = self.storage.driver  # type: ignore[attr-defined]
        try:
            info = driver.head(key)
        except NotFound as exc:
            raise RefusedUpload("The uploaded file is gone; upload it again.", 404) from exc
        if info.size != ticket.size or info.size > ticket.max_size:
            driver.delete(key)
            raise RefusedUpload(f"The stored file has {info.size} bytes, not {ticket.size}.", 413)
        stored_type = (info.content_type or "").split(";")[0].strip()
        if stored_type != ticket.content_type:
            driver.delete(key)
            raise RefusedUpload(
                f"The stored file has type {stored_type!r}, not {ticket.content_type!r}."
            )

    def abort(self, ticket: Ticket) -> None:
        """Abort the multipart upload and delete a completed staged object."""
        key = self._key(ticket.key)
        if ticket.upload_id:
            self.client.abort(key, ticket.upload_id)
        self.storage.driver.delete(key)  # type: ignore[attr-defined]

    def commit(
        self, ticket: Ticket, storage: DjangoStorage, name: str, max_length: int | None
    ) -> str | None:
        """Copy the staged object to a free name on S3 itself (atomic create), then drop it."""
        if storage is not self.storage:
            return None
        driver = self.storage.driver  # type: ignore[attr-defined]
        source = self._key(ticket.key)
        overwrite = bool(self.storage.options.file_overwrite)  # type: ignore[attr-defined]
        for _ in range(MAX_ATTEMPTS):
            chosen = self.storage.get_available_name(name, max_length=max_length)
            try:
                if overwrite:
                    driver.copy(source, self._key(chosen))
                else:
                    driver.copy_new(source, self._key(chosen))
            except AlreadyExists:
                continue
            driver.delete(source)
            return chosen
        raise AlreadyExists(f"No free name like {name!r} after {MAX_ATTEMPTS} attempts.")

    def leftovers(self) -> Iterator[Leftover]:
        """Yield unfinished multipart uploads and staged objects under the staging prefix."""
        prefix = self._key(self.options.STAGING_PREFIX) + "/"
        for upload in self.client.pending(prefix):
            yield Leftover(self.kind, upload.key, upload.upload_id, upload.initiated)
        from stowage.drivers.base import ObjectInfo

        driver = self.storage.driver  # type: ignore[attr-defined]
        for info in driver.list(prefix.rstrip("/"), recursive=True):
            if isinstance(info, ObjectInfo):
                yield Leftover(self.kind, info.key, "", info.modified)

    def remove(self, leftover: Leftover) -> None:
        """Abort the upload or delete the staged object."""
        if leftover.upload_id:
            self.client.abort(leftover.key, leftover.upload_id)
        else:
            self.storage.driver.delete(leftover.key)  # type: ignore[attr-defined]


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

    def start(self, ticket: Ticket) -> Ticket:
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
        if offset != self.offset(ticket):
            raise RefusedUpload("Upload-Offset does not match the stored size.", 409)
        written = offset
        with self.path(ticket).open("ab") as handle:
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
SESSION_CLASSES: list[type[UploadSession]] = [S3Session, TusSession]


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
