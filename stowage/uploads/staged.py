"""Turn the signed reference a form submits back into a file the model can save."""

from __future__ import annotations

from typing import IO, Any

from django.core import signing
from django.core.files.base import File
from django.core.files.storage import Storage as DjangoStorage
from django.core.files.storage import storages

from stowage.uploads.config import upload_settings
from stowage.uploads.sessions import (
    RefusedUpload,
    Ticket,
    TusSession,
    UploadSession,
    session_of_kind,
)

__all__ = ["STAGED_SALT", "StagedUpload", "load_staged", "sign_staged"]

STAGED_SALT = "stowage.uploads.staged"


def sign_staged(ticket: Ticket) -> str:
    """Return the value the form submits for a finished upload."""
    return signing.dumps(ticket.dump(), salt=STAGED_SALT, compress=True)


class StagedUpload(File):  # type: ignore[type-arg]
    """A verified, staged upload, saved by a model's FileField like any file.

    Saving moves it on the service where the session can (S3: an atomic
    server-side copy to a free name); elsewhere the bytes are read from the
    staged file and saved through the storage as usual.
    """

    def __init__(self, ticket: Ticket, session: UploadSession) -> None:
        self.ticket = ticket
        self.session = session
        self.content_type = ticket.content_type
        self._handle: IO[bytes] | None = None
        super().__init__(None, ticket.name)
        self.size = ticket.size

    @property
    def file(self) -> IO[bytes]:
        """Open the staged bytes on first use (never for a server-side copy)."""
        if self._handle is None:
            if isinstance(self.session, TusSession):
                self._handle = self.session.path(self.ticket).open("rb")
            else:
                self._handle = self.session.storage.open(self.ticket.stored_name, "rb")
        return self._handle

    @file.setter
    def file(self, value: IO[bytes] | None) -> None:
        self._handle = value

    def temporary_file_path(self) -> str:
        """Return the local staged file, so a local storage can move it into place."""
        if not isinstance(self.session, TusSession):
            raise AttributeError("temporary_file_path")
        return str(self.session.path(self.ticket))

    def commit_to(self, storage: DjangoStorage, name: str, max_length: int | None) -> str | None:
        """Move the staged file to ``name`` on the service; None when it must be streamed."""
        return self.session.commit(self.ticket, storage, name, max_length)

    def close(self) -> None:
        """Close the staged bytes if they were opened."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def load_staged(value: str, *, expected_alias: str | None = None) -> StagedUpload:
    """Verify a submitted reference (signature, age, size and type by HEAD); return the file."""
    options = upload_settings()
    try:
        data: dict[str, Any] = signing.loads(value, salt=STAGED_SALT, max_age=options.SESSION_AGE)
    except signing.BadSignature as exc:
        raise RefusedUpload("The upload reference is invalid or expired; upload again.") from exc
    ticket = Ticket.load(data)
    if expected_alias is not None and ticket.alias != expected_alias:
        raise RefusedUpload("The upload went to another storage.")
    session = session_of_kind(ticket.kind, storages[ticket.alias], ticket.alias, options)
    session.verify(ticket)
    return StagedUpload(ticket, session)
