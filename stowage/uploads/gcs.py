"""Upload to Google Cloud Storage through a resumable upload session: :class:`GCSSession`.

The server starts the session with the driver's own credentials and
endpoint (JSON API, ``uploadType=resumable``), fixing the object's
Content-Type and size (``X-Upload-Content-Type``,
``X-Upload-Content-Length``, which the service enforces) and naming the
page's origin, which the session then admits for the browser's requests.
The browser gets only the session URI: it can write that one object, with
that type and size, for a week, and nothing else. It PUTs chunks of a
multiple of 256 KiB with ``Content-Range``; a 308 answer says how much is
stored. Asked with ``Content-Range: bytes */SIZE``, the session reports
the stored range (:func:`query_status`); a DELETE cancels it. Abandoned
sessions expire on the service after a week.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.files.storage import Storage as DjangoStorage

from stowage.exceptions import NotFound
from stowage.records import record
from stowage.uploads.base import CloudSession, RefusedUpload, Ticket
from stowage.uploads.cors import CorsRule
from stowage.uploads.http import send

__all__ = ["CHUNK_QUANTUM", "GCSSession", "Progress", "cancel", "chunk_size", "query_status"]

#: Every chunk but the last must be a multiple of this (the service's rule).
CHUNK_QUANTUM = 256 * 1024
_RANGE = re.compile(r"bytes=0-(\d+)")


@record
class Progress:
    """What a resumable upload session holds: the bytes stored, and whether it is done."""

    offset: int
    complete: bool


def chunk_size(part_size: int) -> int:
    """Return ``part_size`` rounded down to a multiple of 256 KiB (at least 256 KiB)."""
    return max(CHUNK_QUANTUM, part_size // CHUNK_QUANTUM * CHUNK_QUANTUM)


def query_status(uri: str, size: int, *, timeout: float) -> Progress:
    """Ask the session at ``uri`` how much of its ``size`` bytes it stored.

    A 308 answer's ``Range: bytes=0-N`` means N + 1 bytes (no Range: none);
    a 200 or 201 means the upload is complete. Raise NotFound when the
    session is gone (cancelled or expired).
    """
    answer = send(
        "PUT",
        uri,
        what="asking an upload session what it stored",
        # No body, so no Content-Type: the session keeps the type it was given.
        headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"},
        timeout=timeout,
        accept=(308, 410),
    )
    if answer.status == 410:
        raise NotFound("asking an upload session what it stored: the session is gone")
    if answer.status == 308:
        found = _RANGE.fullmatch(answer.headers.get("Range", ""))
        return Progress(int(found[1]) + 1 if found else 0, False)
    resource = json.loads(answer.body or b"{}")
    return Progress(int(resource.get("size", 0)), True)


def cancel(uri: str, *, timeout: float) -> None:
    """Cancel the session at ``uri`` (the service answers 499); a gone one is not an error."""
    send(
        "DELETE", uri, what="cancelling an upload session", timeout=timeout, accept=(404, 410, 499)
    )


def _gcs_rule(rule: CorsRule) -> dict[str, Any]:
    # GCS has one list of headers, both allowed in requests and exposed in answers.
    headers = list(dict.fromkeys((*rule.allowed_headers, *rule.exposed_headers)))
    return {
        "origin": list(rule.origins),
        "method": list(rule.methods),
        "responseHeader": headers,
        "maxAgeSeconds": rule.max_age,
    }


def _rule(document: dict[str, Any]) -> CorsRule:
    headers = tuple(document.get("responseHeader") or ())
    return CorsRule(
        tuple(document.get("origin") or ()),
        tuple(document.get("method") or ()),
        headers,
        headers,
        int(document.get("maxAgeSeconds") or 0),
    )


class GCSSession(CloudSession):
    """Upload to GCS: a resumable session the server starts, chunks PUT by the browser."""

    kind = "gcs"
    # Chunks carry Content-Range; the script reads the stored Range of each 308.
    cors_request_headers = ("Content-Range",)
    cors_exposed_headers = ("Range",)

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Take stowage's GCS storages."""
        return getattr(storage, "driver_name", None) == "gcs"

    @property
    def _timeout(self) -> float:
        return float(self.driver.options.timeout)

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Start the resumable session; its URI is the ticket's upload id."""
        uri = self.driver.start_resumable_upload(
            self.key(ticket.key),
            content_type=ticket.content_type,
            size=ticket.size,
            origin=origin,
        )
        return self.ticket_with(ticket, uri)

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Tell the browser the session URI and the chunk size."""
        return {
            "kind": self.kind,
            "url": ticket.upload_id,
            "chunk_size": chunk_size(self.options.PART_SIZE),
        }

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """Ask the session how many bytes it stored (the status query, by the server)."""
        try:
            progress = query_status(ticket.upload_id, ticket.size, timeout=self._timeout)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        return {"offset": progress.offset, "complete": progress.complete}

    def finish(self, ticket: Ticket) -> None:
        """Check the object the last chunk completed by HEAD: size and type as accepted."""
        try:
            self.verify(ticket)
        except RefusedUpload as exc:
            if exc.status != 404:
                raise
            raise RefusedUpload("Some bytes are still missing.", 409) from exc

    def abort(self, ticket: Ticket) -> None:
        """Cancel the session and delete a completed staged object."""
        if ticket.upload_id:
            cancel(ticket.upload_id, timeout=self._timeout)
        self.driver.delete(self.key(ticket.key))

    def cors_document(self, rules: list[CorsRule]) -> dict[str, Any]:
        """Return ``rules`` as the bucket's ``cors`` metadata."""
        return {"cors": [_gcs_rule(rule) for rule in rules]}

    def read_cors(self) -> list[CorsRule]:
        """Read the bucket's ``cors`` metadata."""
        return [_rule(document) for document in self.driver.cors()]

    def write_cors(self, rules: list[CorsRule]) -> None:
        """Set the bucket's ``cors`` metadata (a PATCH of the bucket)."""
        self.driver.set_cors([_gcs_rule(rule) for rule in rules])
