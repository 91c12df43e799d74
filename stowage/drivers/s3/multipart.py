"""Call S3's multipart upload API: create, upload parts, complete, abort, list.

One :class:`MultipartClient` per S3 driver serves both the driver's large
creates (:mod:`stowage.drivers.s3.creates`) and the direct-upload sessions
(:mod:`stowage.uploads.s3`), over the driver's :class:`~.rest.RestClient`.
Every call but completion is safe to send again and is retried on transient
failures; completion is sent again only after the service's own 5xx answer
(:func:`~.rest.answered`), since a lost answer may hide a completed upload.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from stowage.drivers.s3.checksums import Checksum
from stowage.drivers.s3.rest import (
    NAMESPACE,
    Body,
    RestClient,
    answered,
    find_all,
    find_text,
)
from stowage.exceptions import NotFound, ServiceError
from stowage.records import record

__all__ = ["MultipartClient", "Part", "PendingUpload"]


@record
class Part:
    """One stored part of a multipart upload."""

    number: int
    size: int
    etag: str
    #: The part's additional checksum in base64, when the upload carries them.
    checksum: str | None = None


@record
class PendingUpload:
    """One multipart upload not yet completed or aborted."""

    key: str
    upload_id: str
    initiated: dt.datetime | None


class MultipartClient:
    """Call S3's multipart API for one bucket."""

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    def create(self, key: str, headers: Mapping[str, str]) -> str:
        """Start a multipart upload to ``key`` with the object's ``headers``; return its id."""
        answer = self.rest.call(
            "POST", key, {"uploads": ""}, headers=headers, what=f"starting an upload to {key!r}"
        )
        upload_id = find_text(ET.fromstring(answer.body), "UploadId")
        if not upload_id:
            raise ServiceError(f"starting an upload to {key!r}: no UploadId in the answer")
        return upload_id

    def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        body: Body,
        *,
        checksum: Checksum | None = None,
    ) -> Part:
        """Upload part ``number`` (from 1); with ``checksum``, send the part's checksum too."""
        headers = {}
        digest = None
        if checksum is not None:
            digest = checksum.of(body)
            headers[checksum.header] = digest
        answer = self.rest.call(
            "PUT",
            key,
            {"partNumber": str(number), "uploadId": upload_id},
            body=body,
            headers=headers,
            what=f"uploading part {number} of {key!r}",
        )
        etag = answer.headers.get("ETag", "")
        if not etag:
            raise ServiceError(f"uploading part {number} of {key!r}: no ETag in the answer")
        return Part(number, len(body), etag, digest)

    def copy_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        source: str,
        first: int,
        last: int,
        *,
        checksum: Checksum | None = None,
    ) -> Part:
        """Copy bytes ``first`` to ``last`` (inclusive) of the object ``source`` as part ``number``.

        An empty range (``last < first``) copies the whole object, which must
        then be empty: S3 takes no byte range of an empty object. In an
        upload started with an additional ``checksum``, S3 answers the
        part's, which the completion must repeat.
        """
        headers = {"x-amz-copy-source": quote(f"/{self.rest.address.bucket}/{source}", safe="/")}
        if last >= first:
            headers["x-amz-copy-source-range"] = f"bytes={first}-{last}"
        answer = self.rest.call(
            "PUT",
            key,
            {"partNumber": str(number), "uploadId": upload_id},
            headers=headers,
            what=f"copying part {number} of {source!r} to {key!r}",
        )
        root = ET.fromstring(answer.body)
        etag = find_text(root, "ETag")
        if not etag:
            raise ServiceError(f"copying part {number} of {source!r}: no ETag in the answer")
        digest = (find_text(root, checksum.element) or None) if checksum else None
        return Part(number, max(last - first + 1, 0), etag, digest)

    def complete(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        if_absent: bool = False,
        checksum: Checksum | None = None,
    ) -> str | None:
        """Join ``parts`` into the object ``key``; return its ETag if the answer gives one.

        With ``if_absent`` the object is created only if ``key`` is free
        (``If-None-Match: *``); else AlreadyExists is raised and the upload
        stays pending, for the caller to abort. ``checksum`` names the
        algorithm of the parts' checksums, which are sent again.
        """
        root = ET.Element("CompleteMultipartUpload", xmlns=NAMESPACE)
        for part in parts:
            element = ET.SubElement(root, "Part")
            if part.checksum is not None and checksum is not None:
                ET.SubElement(element, checksum.element).text = part.checksum
            ET.SubElement(element, "ETag").text = part.etag
            ET.SubElement(element, "PartNumber").text = str(part.number)
        headers = {"Content-Type": "application/xml"}
        if if_absent:
            headers["If-None-Match"] = "*"
        answer = self.rest.call(
            "POST",
            key,
            {"uploadId": upload_id},
            body=ET.tostring(root),
            headers=headers,
            what=f"completing the upload to {key!r}",
            retryable=answered,
        )
        if not answer.body.strip():
            return None
        return find_text(ET.fromstring(answer.body), "ETag").strip('"') or None

    def abort(self, key: str, upload_id: str) -> None:
        """Abort the upload and drop its parts (already gone: not an error)."""
        with contextlib.suppress(NotFound):
            self.rest.call("DELETE", key, {"uploadId": upload_id}, what=f"aborting {key!r}")

    def list_parts(
        self, key: str, upload_id: str, *, checksum: Checksum | None = None
    ) -> list[Part]:
        """Return the parts stored so far, by number (ListParts, every page).

        With ``checksum``, each part carries its checksum where the answer
        gives it, for the completion to repeat.
        """
        parts: list[Part] = []
        marker = ""
        while True:
            query = {"uploadId": upload_id, "max-parts": "1000"}
            if marker:
                query["part-number-marker"] = marker
            answer = self.rest.call("GET", key, query, what=f"listing the parts of {key!r}")
            root = ET.fromstring(answer.body)
            for element in find_all(root, "Part"):
                parts.append(
                    Part(
                        int(find_text(element, "PartNumber")),
                        int(find_text(element, "Size")),
                        find_text(element, "ETag"),
                        (find_text(element, checksum.element) or None) if checksum else None,
                    )
                )
            if find_text(root, "IsTruncated") != "true":
                return sorted(parts, key=lambda part: part.number)
            marker = find_text(root, "NextPartNumberMarker")

    def pending(self, prefix: str) -> list[PendingUpload]:
        """Return the multipart uploads under ``prefix`` not yet completed or aborted."""
        found: list[PendingUpload] = []
        key_marker = id_marker = ""
        while True:
            query = {"uploads": "", "prefix": prefix}
            if key_marker:
                query["key-marker"] = key_marker
                query["upload-id-marker"] = id_marker
            answer = self.rest.call("GET", "", query, what=f"listing uploads under {prefix!r}")
            root = ET.fromstring(answer.body)
            for element in find_all(root, "Upload"):
                initiated = find_text(element, "Initiated")
                found.append(
                    PendingUpload(
                        find_text(element, "Key"),
                        find_text(element, "UploadId"),
                        dt.datetime.fromisoformat(initiated.replace("Z", "+00:00"))
                        if initiated
                        else None,
                    )
                )
            if find_text(root, "IsTruncated") != "true":
                return found
            key_marker = find_text(root, "NextKeyMarker")
            id_marker = find_text(root, "NextUploadIdMarker")
