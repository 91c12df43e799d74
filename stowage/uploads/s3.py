"""Upload to S3 with presigned multipart URLs: :class:`S3Session`.

The server's own calls (CreateMultipartUpload, ListParts, Complete, Abort,
ListMultipartUploads, the bucket's CORS rules) go through the S3 driver's
:class:`~stowage.drivers.s3.multipart.MultipartClient` and its signed
client, the ones the driver's large creates use. The browser only ever
receives presigned ``UploadPart`` URLs (stowage's own SigV4 signer,
:meth:`stowage.drivers.s3.S3Driver.sign`): no credential leaves the server.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from django.core.files.storage import Storage as DjangoStorage

from stowage.exceptions import ConfigurationError, NotFound, StowageError
from stowage.uploads.base import CloudSession, Leftover, RefusedUpload, Ticket
from stowage.uploads.cors import CorsRule, gaps

if TYPE_CHECKING:
    from stowage.drivers.s3 import S3Driver
    from stowage.drivers.s3.checksums import Checksum
    from stowage.drivers.s3.multipart import MultipartClient

__all__ = ["S3Session", "cors_xml"]


#: S3's names of a CORS rule's lists: one element per value in the XML.
_CORS_LISTS = {
    "AllowedOrigins": "AllowedOrigin",
    "AllowedMethods": "AllowedMethod",
    "AllowedHeaders": "AllowedHeader",
    "ExposeHeaders": "ExposeHeader",
}


def _cors_dict(rule: CorsRule) -> dict[str, Any]:
    return {
        "AllowedOrigins": list(rule.origins),
        "AllowedMethods": list(rule.methods),
        "AllowedHeaders": list(rule.allowed_headers),
        "ExposeHeaders": list(rule.exposed_headers),
        "MaxAgeSeconds": rule.max_age,
    }


def cors_xml(rules: list[CorsRule]) -> bytes:
    """Return ``rules`` as the XML body of S3's PutBucketCors."""
    root = ET.Element("CORSConfiguration")
    for rule in rules:
        element = ET.SubElement(root, "CORSRule")
        for key, values in _cors_dict(rule).items():
            if key in _CORS_LISTS:
                for value in values:
                    ET.SubElement(element, _CORS_LISTS[key]).text = value
            else:
                ET.SubElement(element, key).text = str(values)
    return bytes(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _parse_cors(document: bytes) -> list[CorsRule]:
    from stowage.drivers.s3.rest import find_all, find_text

    rules = []
    for element in find_all(ET.fromstring(document), "CORSRule"):

        def values(name: str, rule: ET.Element = element) -> tuple[str, ...]:
            return tuple((e.text or "") for e in find_all(rule, name))

        age = find_text(element, "MaxAgeSeconds")
        rules.append(
            CorsRule(
                values("AllowedOrigin"),
                values("AllowedMethod"),
                values("AllowedHeader"),
                values("ExposeHeader"),
                int(age) if age.isdigit() else 0,
            )
        )
    return rules


#: The checksum the widget computes for each part: the one the page knows.
PART_CHECKSUM = "CRC32"
#: How long a process keeps a bucket's CORS rules before reading them again (seconds).
CORS_RULES_AGE = 300.0

_CORS_RULES: dict[tuple[str, str], tuple[float, list[CorsRule]]] = {}
_CORS_LOCK = threading.Lock()


def _part_checksums(numbers: list[int], given: dict[int, str] | None) -> dict[int, str]:
    """Return the base64 CRC32 of each part of ``numbers``, or refuse a missing or bad one."""
    found = {}
    for n in numbers:
        value = (given or {}).get(n)
        try:
            valid = isinstance(value, str) and len(base64.b64decode(value, validate=True)) == 4
        except binascii.Error:
            valid = False
        if not valid:
            raise RefusedUpload(f"Give part {n}'s CRC32 in 'checksums', in base64.")
        found[n] = str(value)
    return found


class S3Session(CloudSession):
    """Upload to S3 with presigned multipart URLs, parts in parallel, resumable."""

    kind = "s3"
    # Parts are PUT with their Content-Type; the script reads each part's ETag.
    cors_request_headers = ("Content-Type",)
    cors_exposed_headers = ("ETag",)

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Take stowage's S3 storages."""
        return getattr(storage, "driver_name", None) == "s3"

    @property
    def s3(self) -> S3Driver:
        """Return the storage's S3 driver."""
        driver: S3Driver = self.driver
        return driver

    @property
    def client(self) -> MultipartClient:
        """Return the multipart client of the storage's driver."""
        return self.s3.multipart

    def part_count(self, ticket: Ticket) -> int:
        """Return how many parts the declared size makes."""
        return max(1, math.ceil(ticket.size / self.options.PART_SIZE))

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Create the multipart upload: its Content-Type fixed by the server, encrypted as set.

        Where the form field named the file (``ticket.wanted``) and a save
        of that name would store what the browser sends with the headers of
        its creation, the upload completes at a free name reserved now,
        created with the headers a save stores: saving the form copies
        nothing. Otherwise it is staged, with the ``server_side_encryption``
        the storage's objects get, so no byte of it is stored otherwise,
        even for a while.
        """
        from stowage.drivers.s3.creates import object_headers

        checksum = self.part_checksum(origin)
        if checksum is not None:
            ticket = dataclasses.replace(ticket, checksum=checksum.name)
        attributes = self.reserved_attributes(ticket)
        if attributes is None:
            attributes = {"Content-Type": ticket.content_type}
        else:
            ticket = self.reserve(ticket)
        headers = object_headers(attributes, self.s3.options, checksum)
        try:
            ticket = self.ticket_with(
                ticket, self.client.create(self.key(ticket.stored_name), headers)
            )
            if ticket.target:
                self.mark(ticket)
        except BaseException:
            if ticket.target:  # nothing will find the reserved name: free it now
                if ticket.upload_id:
                    self.drop_upload(self.key(ticket.target), ticket.upload_id)
                self.driver.delete(self.key(ticket.target))
            raise
        return ticket

    def part_checksum(self, origin: str | None) -> Checksum | None:
        """Return the checksum the browser sends with each part from ``origin``; None for none.

        CRC32, where the storage's own uploads send it (``checksum_algorithm``
        ``"auto"`` on a server that takes checksums, or ``"crc32"``) and the
        bucket's CORS rules let the page send its header. The rules are read
        at most every :data:`CORS_RULES_AGE` seconds per process; rules that
        cannot be read count as not allowing it. Parts without a checksum
        are still checked by size; ``manage.py stowage cors --apply`` adds
        the header to the rules.
        """
        checksum = self.page_checksum()
        if checksum is None or not origin:
            return None
        try:
            needed = self.cors_rule([origin])
        except ConfigurationError:  # not an origin a rule can name
            return None
        return None if gaps(needed, self.current_cors()) else checksum

    def page_checksum(self) -> Checksum | None:
        """Return the checksum the page computes where the storage's uploads send it."""
        checksum = self.s3.upload_checksum()
        return checksum if checksum is not None and checksum.name == PART_CHECKSUM else None

    def current_cors(self) -> list[CorsRule]:
        """Return the bucket's CORS rules as read at most :data:`CORS_RULES_AGE` seconds ago."""
        options = self.s3.options
        key = (options.endpoint_url or "", options.bucket_name)
        now = time.monotonic()
        with _CORS_LOCK:
            seen = _CORS_RULES.get(key)
        if seen is not None and now - seen[0] < CORS_RULES_AGE:
            return seen[1]
        try:
            rules = self.read_cors()
        except StowageError:
            rules = []
        with _CORS_LOCK:
            _CORS_RULES[key] = (now, rules)
        return rules

    def optional_cors_headers(self) -> tuple[str, ...]:
        """Allow the parts' CRC32 header, which parts carry where the rules allow it."""
        checksum = self.page_checksum()
        return () if checksum is None else (checksum.header,)

    def checksum_of(self, ticket: Ticket) -> Checksum | None:
        """Return the checksum the parts of ``ticket`` carry; None for none."""
        from stowage.drivers.s3.checksums import CHECKSUMS

        return CHECKSUMS.get(ticket.checksum.lower()) if ticket.checksum else None

    def reserved_attributes(self, ticket: Ticket) -> dict[str, str] | None:
        """Return the headers to create the upload at ``ticket.wanted`` with; None to stage it.

        None where the field named no file, where a save of it would store
        another Content-Type than the one the upload is checked against, or
        where no one multipart upload stores what a save would (see
        :meth:`saved_attributes`).
        """
        if not ticket.wanted:
            return None
        if self.stored_type(ticket.wanted, ticket.content_type) != ticket.content_type:
            return None
        return self.saved_attributes(ticket.wanted, ticket.content_type)

    def saved_attributes(self, name: str, content_type: str) -> dict[str, str] | None:
        """Return the headers a save of ``name`` stores; None where a multipart upload cannot.

        None where the storage's class saves by its own code or overwrites,
        where its driver compresses the type, and where the driver's large
        creates are not its own multipart uploads (a proxy it cannot use, a
        server without conditional writes).
        """
        s3 = self.s3
        if self.saved_by_project_code() or not s3.creates_directly():
            return None
        if self.storage.options.file_overwrite:  # type: ignore[attr-defined]
            return None
        attributes = s3.put_attributes(self.stored_type(name, content_type))
        return None if s3.compresses(attributes) else attributes

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Tell the browser the part size and count, and the checksum each part carries."""
        plan: dict[str, Any] = {
            "kind": self.kind,
            "part_size": self.options.PART_SIZE,
            "part_count": self.part_count(ticket),
        }
        if ticket.checksum:
            plan["checksum"] = ticket.checksum.lower()
        return plan

    def sign_parts(
        self, ticket: Ticket, numbers: list[int], checksums: dict[int, str] | None = None
    ) -> dict[int, str]:
        """Return presigned PUT URLs for the parts ``numbers``, valid for URL_EXPIRE.

        Each URL signs its part's planned Content-Length (the last part is
        the rest) and, where the upload's parts carry checksums, the part's
        checksum from ``checksums``: S3 stores the part only if its bytes
        have it.
        """
        count = self.part_count(ticket)
        bad = [n for n in numbers if not 1 <= n <= count]
        if bad or not numbers or len(numbers) > 100:
            raise RefusedUpload(f"Part numbers must be 1 to {count}, at most 100 at a time.")
        checksum = self.checksum_of(ticket)
        digests = _part_checksums(numbers, checksums) if checksum is not None else {}
        expires = dt.timedelta(seconds=self.options.URL_EXPIRE)
        key, part = self.key(ticket.stored_name), self.options.PART_SIZE
        urls = {}
        for n in numbers:
            headers = {"Content-Length": str(min(part, ticket.size - (n - 1) * part))}
            if checksum is not None:
                headers[checksum.header] = digests[n]
            urls[n] = self.s3.sign(
                key,
                method="PUT",
                expires=expires,
                parameters={"partNumber": str(n), "uploadId": ticket.upload_id},
                headers=headers,
            )
        return urls

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """List the parts stored (ListParts, by the server)."""
        try:
            parts = self.client.list_parts(self.key(ticket.stored_name), ticket.upload_id)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        return {"stored": [{"number": p.number, "size": p.size} for p in parts]}

    def finish(self, ticket: Ticket) -> None:
        """Check the parts add up to the declared size, join them, and verify by HEAD."""
        key, client, checksum = self.key(ticket.stored_name), self.client, self.checksum_of(ticket)
        try:
            parts = client.list_parts(key, ticket.upload_id, checksum=checksum)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        total = sum(p.size for p in parts)
        numbers = [p.number for p in parts]
        if total > ticket.max_size or total > ticket.size:
            client.abort(key, ticket.upload_id)
            raise RefusedUpload("The parts sent exceed the declared size; upload refused.", 413)
        if total != ticket.size or numbers != list(range(1, self.part_count(ticket) + 1)):
            raise RefusedUpload("Some parts are still missing.", 409)
        client.complete(key, ticket.upload_id, parts, checksum=checksum)
        self.verify(ticket)

    def copier(self, name: str, content_type: str) -> Callable[[str, str], object] | None:
        """Copy with the headers a save of ``name`` stores, where only its headers differ.

        S3 copies no header into a multipart upload, so one multipart copy
        created with those headers stores what a save would. Where
        :meth:`saved_attributes` finds none, the staged object is streamed
        through the storage's ``save``.
        """
        copy = super().copier(name, content_type)
        if copy is not None:
            return copy
        attributes = self.saved_attributes(name, content_type)
        if attributes is None:
            return None
        s3 = self.s3

        def copy_as_saved(source: str, key: str) -> object:
            from stowage.drivers.s3.creates import copy_in_parts

            return copy_in_parts(
                s3.multipart,
                source,
                key,
                options=s3.options,
                checksum=s3.upload_checksum(),
                concurrency=s3.multipart_concurrency,
                attributes=attributes,
            )

        return copy_as_saved

    def abort(self, ticket: Ticket) -> None:
        """Abort the multipart upload and delete a completed staged object.

        An upload at a reserved name is freed only if it is not saved.
        """
        if ticket.target:
            self.release(self.key(ticket.key))
            return
        key = self.key(ticket.key)
        if ticket.upload_id:
            self.client.abort(key, ticket.upload_id)
        self.driver.delete(key)

    def drop_upload(self, key: str, upload_id: str) -> None:
        """Abort the multipart upload ``upload_id`` to ``key``, if it is still open."""
        self.client.abort(key, upload_id)

    def leftovers(self) -> Iterator[Leftover]:
        """Yield unfinished multipart uploads, then staged objects under the staging prefix."""
        prefix = self.key(self.options.STAGING_PREFIX) + "/"
        for upload in self.client.pending(prefix):
            yield Leftover(self.kind, upload.key, upload.upload_id, upload.initiated)
        yield from self.staged()

    def remove(self, leftover: Leftover) -> None:
        """Abort the upload or delete the staged object."""
        if leftover.upload_id:
            self.client.abort(leftover.key, leftover.upload_id)
        else:
            super().remove(leftover)

    # -- CORS ---------------------------------------------------------------------------

    def cors_document(self, rules: list[CorsRule]) -> dict[str, Any]:
        """Return ``rules`` as S3's ``CORSRules``."""
        return {"CORSRules": [_cors_dict(rule) for rule in rules]}

    def read_cors(self) -> list[CorsRule]:
        """Read the bucket's CORS rules (GetBucketCors)."""
        try:
            answer = self.s3.rest.call(
                "GET", "", {"cors": ""}, what="reading the bucket's CORS rules"
            )
        except NotFound:
            return []
        return _parse_cors(answer.body)

    def write_cors(self, rules: list[CorsRule]) -> None:
        """Set the bucket's CORS rules (PutBucketCors)."""
        document = cors_xml(rules)
        digest = base64.b64encode(hashlib.md5(document).digest()).decode()
        self.s3.rest.call(
            "PUT",
            "",
            {"cors": ""},
            body=document,
            headers={"Content-MD5": digest, "Content-Type": "application/xml"},
            what="setting the bucket's CORS rules",
        )
