"""Describe an upload (the ticket) and what every kind of upload session does.

:class:`UploadSession` is the interface the views, the form field and the
management commands use; :class:`CloudSession` is the part the sessions
that send the browser straight to a cloud service (S3, GCS, Azure) share:
the check by HEAD, the move to a free name by a server-side copy, the
reservation of a final name an upload completes at (see
:mod:`stowage.uploads.reserved`), the listing of staged objects and the
CORS rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import secrets
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from django.core.files.storage import Storage as DjangoStorage
from django.utils.crypto import salted_hmac
from django.utils.text import get_valid_filename

from stowage.drivers.base import Capability, ObjectInfo
from stowage.exceptions import AlreadyExists, NotFound, StowageError
from stowage.records import record
from stowage.subclassing import overrides
from stowage.uploads.config import UploadSettings
from stowage.uploads.cors import CorsRule, check_origins, gaps
from stowage.uploads.reserved import Reservation, claim_of, is_claim, is_marker, marker_of

__all__ = [
    "MAX_ATTEMPTS",
    "CloudSession",
    "Leftover",
    "RefusedUpload",
    "Ticket",
    "UploadSession",
    "user_folder",
]

#: How many names an atomic create tries before giving up (as saves do).
MAX_ATTEMPTS = 100


class RefusedUpload(Exception):
    """Refuse an upload request; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@record
class Ticket:
    """Describe one upload: signed into the token the browser carries between calls.

    ``key`` is the staging name. An upload that completes at its final name
    has that name, reserved, as ``target``, the name the form field asked
    for as ``wanted``, and its marker's name as ``key``. ``checksum`` names
    the algorithm of the checksum each part carries (S3), if any.
    """

    alias: str
    kind: str
    key: str
    upload_id: str
    name: str
    size: int
    content_type: str
    user: str
    max_size: int
    target: str = ""
    wanted: str = ""
    checksum: str = ""

    @property
    def stored_name(self) -> str:
        """Return the storage name the upload's bytes go to."""
        return self.target or self.key

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
            "to": self.target,
            "w": self.wanted,
            "c": self.checksum,
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
            str(data.get("to", "")),
            str(data.get("w", "")),
            str(data.get("c", "")),
        )


@record
class Leftover:
    """An upload started and never finished or never submitted."""

    kind: str
    key: str
    upload_id: str
    started: dt.datetime | None


def user_folder(user_pk: str) -> str:
    """Return the staging folder of a user: a keyed hash, so ids are not exposed.

    SHA-1, named: Django's default until it changes, so uploads staged
    before an upgrade stay in the folder their user is looked up in.
    """
    return salted_hmac("stowage.uploads.user", user_pk, algorithm="sha1").hexdigest()[:20]


class _Typed:
    """Stand for a staged file where only its Content-Type matters."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type


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

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Start the upload of ``ticket`` on the service; return it with its upload id.

        ``origin`` is the page's origin, for services that admit a browser
        per upload session rather than by their CORS rules alone.
        """
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


class CloudSession(UploadSession):
    """Send the browser straight to a cloud service; verify, move and clean up there.

    Subclasses start, report and finish their service's kind of upload and
    translate :class:`~stowage.uploads.cors.CorsRule` to and from their
    service's CORS document.
    """

    #: Request headers the browser's uploads send, which the CORS rules must allow.
    cors_request_headers: ClassVar[tuple[str, ...]] = ()
    #: Response headers the script reads, which the CORS rules must expose.
    cors_exposed_headers: ClassVar[tuple[str, ...]] = ()

    @property
    def driver(self) -> Any:
        """Return the storage's driver."""
        return self.storage.driver  # type: ignore[attr-defined]

    def key(self, name: str) -> str:
        """Return the service key of the storage name ``name``."""
        return str(self.storage.key(name))  # type: ignore[attr-defined]

    def ticket_with(self, ticket: Ticket, upload_id: str) -> Ticket:
        """Return ``ticket`` carrying the service's ``upload_id``."""
        return dataclasses.replace(ticket, upload_id=upload_id)

    def verify(self, ticket: Ticket) -> None:
        """HEAD the staged object: its size and Content-Type must be the ones accepted.

        An upload completed at its reserved name must still have its marker:
        once saved, its reference is spent.
        """
        key = self.key(ticket.stored_name)
        if ticket.target:
            try:
                self.driver.head(self.key(ticket.key))
            except NotFound as exc:
                raise RefusedUpload(
                    "This upload is saved already, or gone; upload it again.", 409
                ) from exc
        try:
            info = self.driver.head(key)
        except NotFound as exc:
            raise RefusedUpload("The uploaded file is gone; upload it again.", 404) from exc
        if info.size != ticket.size or info.size > ticket.max_size:
            self.driver.delete(key)
            raise RefusedUpload(f"The stored file has {info.size} bytes, not {ticket.size}.", 413)
        stored_type = (info.content_type or "").split(";")[0].strip()
        if stored_type != ticket.content_type:
            self.driver.delete(key)
            raise RefusedUpload(
                f"The stored file has type {stored_type!r}, not {ticket.content_type!r}."
            )

    def commit(
        self, ticket: Ticket, storage: DjangoStorage, name: str, max_length: int | None
    ) -> str | None:
        """Keep the upload at its reserved name, or copy it to a free name on the service.

        An upload completed at the name the form field asked for is kept
        there when the model saves it under that same name: its claim is
        taken (a reference submitted twice is refused the second time) and
        its marker dropped. Otherwise the copy is :meth:`copier`'s, and the
        staged object is dropped after it. Where no copy stores what
        ``storage.save`` would, the staged object is streamed through
        ``storage.save`` and then deleted. None (the adapter streams it)
        for another storage, or a driver without server-side copies.
        """
        driver = self.driver
        if storage is not self.storage or Capability.SERVER_COPY not in driver.capabilities:
            return None
        if self.kept_at_target(ticket, name, max_length):
            marker = self.key(ticket.key)
            if not self.claim(marker):
                raise AlreadyExists(
                    f"The upload of {ticket.name!r} is saved already: "
                    "its reference was submitted twice."
                )
            driver.delete(marker)
            return ticket.target
        source = self.key(ticket.stored_name)
        copy = self.copier(name, ticket.content_type)
        if copy is None:
            with self.storage.open(ticket.stored_name, "rb") as staged:
                staged.content_type = ticket.content_type  # type: ignore[attr-defined]
                chosen = str(storage.save(name, staged, max_length=max_length))
            self.drop_staged(ticket)
            return chosen
        for _ in range(MAX_ATTEMPTS):
            chosen = self.storage.get_available_name(name, max_length=max_length)
            try:
                copy(source, self.key(chosen))
            except AlreadyExists:
                continue
            self.drop_staged(ticket)
            return chosen
        raise AlreadyExists(f"No free name like {name!r} after {MAX_ATTEMPTS} attempts.")

    @staticmethod
    def kept_at_target(ticket: Ticket, name: str, max_length: int | None) -> bool:
        """Tell whether a save of ``ticket`` as ``name`` keeps it at its reserved name."""
        fits = max_length is None or len(ticket.target) <= max_length
        return bool(ticket.target) and name == ticket.wanted and fits

    def drop_staged(self, ticket: Ticket) -> None:
        """Delete the staged object once copied, and the marker of a reserved one."""
        self.driver.delete(self.key(ticket.stored_name))
        if ticket.target:
            self.driver.delete(self.key(ticket.key))

    def copier(self, name: str, content_type: str) -> Callable[[str, str], object] | None:
        """Return the copy that stores the staged object as saving it as ``name`` would.

        None where no copy does, and the staged object is streamed through
        the storage's ``save``. A copy keeps the staged bytes and their
        Content-Type, nothing else; a save also runs a subclass's own
        ``_save``, applies its ``get_object_parameters``, chooses the
        Content-Type by the name, and adds what the driver's options add to
        every upload (``object_parameters``, ``gzip``, an ACL). The copy is
        an atomic create (``copy_new``) unless the storage overwrites.
        """
        if self.saved_by_project_code() or self.stored_type(name, content_type) != content_type:
            return None
        driver = self.driver
        if driver.put_adds_to(content_type):
            return None
        if self.storage.options.file_overwrite:  # type: ignore[attr-defined]
            return driver.copy  # type: ignore[no-any-return]
        return getattr(driver, "copy_new", None)

    def saved_by_project_code(self) -> bool:
        """Tell whether the storage's class defines its own ``_save`` or upload parameters."""
        storage = self.storage
        return overrides(storage, "_save") or overrides(storage, "get_object_parameters")

    def stored_type(self, name: str, content_type: str) -> str:
        """Return the Content-Type a save of the staged file as ``name`` would store."""
        return str(self.storage.content_type_for(name, _Typed(content_type)))  # type: ignore[attr-defined]

    # -- reserved names -------------------------------------------------------------------

    def reserve(self, ticket: Ticket) -> Ticket:
        """Take a free name like ``ticket.wanted`` with an empty object, created if absent.

        Return the ticket that completes there, its key its marker's. Until
        the upload completes, the name reads as an empty file.
        """
        for _ in range(MAX_ATTEMPTS):
            chosen = self.storage.get_available_name(ticket.wanted)
            try:
                self.driver.put(self.key(chosen), io.BytesIO(), size=0, if_absent=True)
            except AlreadyExists:
                continue
            return dataclasses.replace(ticket, key=marker_of(ticket.key), target=chosen)
        raise AlreadyExists(f"No free name like {ticket.wanted!r} after {MAX_ATTEMPTS} attempts.")

    def mark(self, ticket: Ticket) -> None:
        """Write the marker of a reserved upload, once the service has given its upload id."""
        body = Reservation(self.key(ticket.target), ticket.upload_id).dump()
        self.driver.put(
            self.key(ticket.key),
            io.BytesIO(body),
            size=len(body),
            content_type="application/octet-stream",
        )

    def claim(self, marker: str) -> bool:
        """Take the claim beside the marker key ``marker``; False if it is taken already."""
        try:
            self.driver.put(claim_of(marker), io.BytesIO(), size=0, if_absent=True)
        except AlreadyExists:
            return False
        return True

    def drop_upload(self, key: str, upload_id: str) -> None:
        """Abort the service's unfinished upload ``upload_id`` to ``key``; none by default."""

    def release(self, marker: str) -> None:
        """Free what the marker key ``marker`` reserved, unless its upload is saved.

        With the claim taken here, the upload is aborted and its object,
        marker and claim deleted. Where the claim was taken before (the
        upload saved, or freed already), only the marker goes.
        """
        driver = self.driver
        try:
            download = driver.get(marker)
            try:
                body = b"".join(download)
            finally:
                download.close()
        except NotFound:
            return
        reservation = Reservation.load(body)
        if reservation is not None and self.claim(marker):
            self.drop_upload(reservation.key, reservation.upload_id)
            driver.delete(reservation.key)
            driver.delete(marker)
            driver.delete(claim_of(marker))
            return
        driver.delete(marker)

    def staged(self) -> Iterator[Leftover]:
        """Yield the staged objects under the staging prefix."""
        prefix = self.key(self.options.STAGING_PREFIX)
        for info in self.driver.list(prefix, recursive=True):
            if isinstance(info, ObjectInfo):
                yield Leftover(self.kind, info.key, "", info.modified)

    def leftovers(self) -> Iterator[Leftover]:
        """Yield the staged objects; unfinished uploads expire on the service."""
        return self.staged()

    def remove(self, leftover: Leftover) -> None:
        """Delete the staged object; free what a marker reserved.

        A claim beside a marker stays: the marker's removal reads it.
        """
        key = leftover.key
        if is_marker(key):
            self.release(key)
        elif not (is_claim(key) and self.driver.exists(marker_of(key))):
            self.driver.delete(key)

    # -- CORS ---------------------------------------------------------------------------

    def cors_rule(self, origins: list[str], *, optional: bool = True) -> CorsRule:
        """Return the rule that lets the browser upload from ``origins``.

        With ``optional``, it also allows the headers the uploads send only
        where the rules allow them (:meth:`optional_cors_headers`).
        """
        extra = self.optional_cors_headers() if optional else ()
        return CorsRule(
            check_origins(origins),
            allowed_headers=(*self.cors_request_headers, *extra),
            exposed_headers=self.cors_exposed_headers,
        )

    def optional_cors_headers(self) -> tuple[str, ...]:
        """Return the request headers uploads send only where the CORS rules allow them."""
        return ()

    def cors_document(self, rules: list[CorsRule]) -> dict[str, Any]:
        """Return ``rules`` as the service's CORS document, to print as JSON."""
        raise NotImplementedError

    def read_cors(self) -> list[CorsRule]:
        """Return the CORS rules the service has now."""
        raise NotImplementedError

    def write_cors(self, rules: list[CorsRule]) -> None:
        """Replace the service's CORS rules with ``rules``."""
        raise NotImplementedError

    def set_cors(self, origins: list[str]) -> bool:
        """Add the rule uploads from ``origins`` need to the service's; False if none was needed."""
        needed = self.cors_rule(origins)
        rules = self.read_cors()
        if not gaps(needed, rules):
            return False
        self.write_cors([*rules, needed])
        return True

    def cors_gaps(self, origins: list[str], *, optional: bool = False) -> list[str] | None:
        """Return what the service's rules lack for uploads from ``origins``; None if unreadable.

        Without ``optional``, only what uploads cannot go without.
        """
        needed = self.cors_rule(origins, optional=optional)
        try:
            rules = self.read_cors()
        except StowageError:
            return None
        return gaps(needed, rules)
