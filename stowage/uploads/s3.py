"""Upload to S3 with presigned multipart URLs: :class:`S3Session` and its S3 calls.

obstore does not expose multipart uploads under a key and id of our
choosing, so each call is a URL presigned by stowage's own SigV4 signer
(:meth:`stowage.drivers.s3.S3Driver.sign`, valid for a minute) and sent
with the standard library. No credential leaves the server: the browser
only ever receives presigned ``UploadPart`` URLs.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.storage import Storage as DjangoStorage

from stowage.exceptions import NotFound, ServiceError
from stowage.uploads.base import CloudSession, Leftover, RefusedUpload, Ticket
from stowage.uploads.cors import CorsRule
from stowage.uploads.http import send, tls_context

if TYPE_CHECKING:
    from stowage.drivers.s3 import S3Driver

__all__ = ["MultipartClient", "Part", "PendingUpload", "S3Session", "cors_xml"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_CALL_EXPIRES = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Part:
    """One stored part of a multipart upload."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class PendingUpload:
    """One multipart upload not yet completed or aborted."""

    key: str
    upload_id: str
    initiated: dt.datetime | None


def _text(element: ET.Element, name: str) -> str:
    found = element.find(f"{_NS}{name}")
    if found is None:
        found = element.find(name)
    return (found.text or "") if found is not None else ""


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return element.findall(f"{_NS}{name}") or element.findall(name)


class MultipartClient:
    """Call S3's multipart API for one driver, each request presigned for a minute."""

    def __init__(self, driver: S3Driver) -> None:
        self.driver = driver
        self._context = tls_context(driver.options.verify)

    def _call(
        self,
        method: str,
        key: str,
        parameters: dict[str, str],
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        what: str,
    ) -> bytes:
        url = self.driver.sign(key, method=method, expires=_CALL_EXPIRES, parameters=parameters)
        answer = send(
            method,
            url,
            what=what,
            body=body,
            headers=headers,
            timeout=self.driver.options.timeout,
            context=self._context,
        )
        return answer.body

    def create(self, key: str, content_type: str) -> str:
        """Start a multipart upload to ``key``; return its upload id."""
        body = self._call(
            "POST",
            key,
            {"uploads": ""},
            headers={"Content-Type": content_type},
            what=f"starting an upload to {key!r}",
        )
        upload_id = _text(ET.fromstring(body), "UploadId")
        if not upload_id:
            raise ServiceError(f"starting an upload to {key!r}: no UploadId in the answer")
        return upload_id

    def sign_part(
        self, key: str, upload_id: str, number: int, size: int, expires: dt.timedelta
    ) -> str:
        """Return a presigned URL to PUT part ``number`` of the upload, of exactly ``size`` bytes.

        The Content-Length is signed, so the service refuses a part of any
        other size: a browser cannot store more than the size it declared.
        """
        return self.driver.sign(
            key,
            method="PUT",
            expires=expires,
            parameters={"partNumber": str(number), "uploadId": upload_id},
            headers={"Content-Length": str(size)},
        )

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """Return the parts stored so far, by number (ListParts, every page)."""
        parts: list[Part] = []
        marker = ""
        while True:
            parameters = {"uploadId": upload_id, "max-parts": "1000"}
            if marker:
                parameters["part-number-marker"] = marker
            root = ET.fromstring(
                self._call("GET", key, parameters, what=f"listing the parts of {key!r}")
            )
            for element in _children(root, "Part"):
                parts.append(
                    Part(
                        int(_text(element, "PartNumber")),
                        int(_text(element, "Size")),
                        _text(element, "ETag"),
                    )
                )
            if _text(root, "IsTruncated") != "true":
                return sorted(parts, key=lambda part: part.number)
            marker = _text(root, "NextPartNumberMarker")

    def complete(self, key: str, upload_id: str, parts: list[Part]) -> None:
        """Join ``parts`` into the object ``key``."""
        root = ET.Element("CompleteMultipartUpload", xmlns=_NS[1:-1])
        for part in parts:
            element = ET.SubElement(root, "Part")
            ET.SubElement(element, "PartNumber").text = str(part.number)
            ET.SubElement(element, "ETag").text = part.etag
        answer = self._call(
            "POST",
            key,
            {"uploadId": upload_id},
            body=ET.tostring(root),
            headers={"Content-Type": "application/xml"},
            what=f"completing the upload to {key!r}",
        )
        # S3 can answer 200 with an error document when the join fails late.
        if answer and ET.fromstring(answer).tag.endswith("Error"):
            raise ServiceError(f"completing the upload to {key!r}: {answer[:300]!r}")

    def abort(self, key: str, upload_id: str) -> None:
        """Abort the upload and drop its parts (already gone: not an error)."""
        with contextlib.suppress(NotFound):
            self._call("DELETE", key, {"uploadId": upload_id}, what=f"aborting {key!r}")

    def pending(self, prefix: str) -> list[PendingUpload]:
        """Return the multipart uploads under ``prefix`` not yet completed or aborted."""
        found: list[PendingUpload] = []
        key_marker = id_marker = ""
        while True:
            parameters = {"uploads": "", "prefix": prefix}
            if key_marker:
                parameters["key-marker"] = key_marker
                parameters["upload-id-marker"] = id_marker
            root = ET.fromstring(
                self._call("GET", "", parameters, what=f"listing uploads under {prefix!r}")
            )
            for element in _children(root, "Upload"):
                initiated = _text(element, "Initiated")
                found.append(
                    PendingUpload(
                        _text(element, "Key"),
                        _text(element, "UploadId"),
                        dt.datetime.fromisoformat(initiated.replace("Z", "+00:00"))
                        if initiated
                        else None,
                    )
                )
            if _text(root, "IsTruncated") != "true":
                return found
            key_marker = _text(root, "NextKeyMarker")
            id_marker = _text(root, "NextUploadIdMarker")

    def get_cors(self) -> bytes:
        """Return the bucket's CORS rules as XML (GetBucketCors; none: an empty document)."""
        try:
            return self._call("GET", "", {"cors": ""}, what="reading the bucket's CORS rules")
        except NotFound:
            return b"<CORSConfiguration/>"

    def put_cors(self, rules_xml: bytes) -> None:
        """Replace the bucket's CORS rules with ``rules_xml`` (PutBucketCors)."""
        digest = base64.b64encode(hashlib.md5(rules_xml).digest()).decode()
        self._call(
            "PUT",
            "",
            {"cors": ""},
            body=rules_xml,
            headers={"Content-MD5": digest, "Content-Type": "application/xml"},
            what="setting the bucket's CORS rules",
        )


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
    rules = []
    for element in _children(ET.fromstring(document), "CORSRule"):

        def values(name: str, rule: ET.Element = element) -> tuple[str, ...]:
            return tuple((e.text or "") for e in _children(rule, name))

        age = _text(element, "MaxAgeSeconds")
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
    def client(self) -> MultipartClient:
        """Return the multipart client of the storage's driver."""
        return MultipartClient(self.driver)

    def part_count(self, ticket: Ticket) -> int:
        """Return how many parts the declared size makes."""
        return max(1, math.ceil(ticket.size / self.options.PART_SIZE))

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Create the multipart upload, its Content-Type fixed by the server."""
        upload_id = self.client.create(self.key(ticket.key), ticket.content_type)
        return self.ticket_with(ticket, upload_id)

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
        key, client, part = self.key(ticket.key), self.client, self.options.PART_SIZE
        return {
            n: client.sign_part(
                key, ticket.upload_id, n, min(part, ticket.size - (n - 1) * part), expires
            )
            for n in numbers
        }

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """List the parts stored (ListParts, by the server)."""
        try:
            parts = self.client.list_parts(self.key(ticket.key), ticket.upload_id)
        except NotFound as exc:
            raise RefusedUpload("This upload is gone; start again.", 404) from exc
        return {"stored": [{"number": p.number, "size": p.size} for p in parts]}

    def finish(self, ticket: Ticket) -> None:
        """Check the parts add up to the declared size, join them, and verify by HEAD."""
        key, client = self.key(ticket.key), self.client
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

    def abort(self, ticket: Ticket) -> None:
        """Abort the multipart upload and delete a completed staged object."""
        key = self.key(ticket.key)
        if ticket.upload_id:
            self.client.abort(key, ticket.upload_id)
        self.driver.delete(key)

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
            self.driver.delete(leftover.key)

    # -- CORS ---------------------------------------------------------------------------

    def cors_document(self, rules: list[CorsRule]) -> dict[str, Any]:
        """Return ``rules`` as S3's ``CORSRules``."""
        return {"CORSRules": [_cors_dict(rule) for rule in rules]}

    def read_cors(self) -> list[CorsRule]:
        """Read the bucket's CORS rules (GetBucketCors)."""
        return _parse_cors(self.client.get_cors())

    def write_cors(self, rules: list[CorsRule]) -> None:
        """Set the bucket's CORS rules (PutBucketCors)."""
        self.client.put_cors(cors_xml(rules))
