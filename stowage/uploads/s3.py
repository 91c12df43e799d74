"""Make S3's multipart calls (create, list parts, complete, abort) from the server.

obstore does not expose multipart uploads under a key and id of our
choosing, so each call is a URL presigned by stowage's own SigV4 signer
(:meth:`stowage.drivers.s3.S3Driver.sign`, valid for a minute) and sent
with the standard library. No credential leaves the server: the browser
only ever receives presigned ``UploadPart`` URLs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stowage.exceptions import AccessDenied, NotFound, ServiceError, ServiceUnavailable

if TYPE_CHECKING:
    from stowage.drivers.s3 import S3Driver

__all__ = ["MultipartClient", "Part", "PendingUpload"]

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
        verify = driver.s3.verify
        if verify is False:
            self._context: ssl.SSLContext | None = ssl._create_unverified_context()
        elif isinstance(verify, str):
            self._context = ssl.create_default_context(cafile=verify)
        else:
            self._context = None

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
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(  # the URL is the configured endpoint, signed
                request, timeout=self.driver.s3.timeout, context=self._context
            ) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            if exc.code == 404:
                raise NotFound(f"{what}: {detail}") from exc
            if exc.code == 403:
                raise AccessDenied(f"{what}: {detail}") from exc
            if exc.code >= 500:
                raise ServiceUnavailable(f"{what}: HTTP {exc.code} {detail}") from exc
            raise ServiceError(f"{what}: HTTP {exc.code} {detail}") from exc
        except OSError as exc:
            raise ServiceUnavailable(f"{what}: {exc}") from exc

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

    def put_cors(self, rules_xml: bytes) -> None:
        """Replace the bucket's CORS rules with ``rules_xml`` (PutBucketCors)."""
        import base64
        import hashlib

        digest = base64.b64encode(hashlib.md5(rules_xml).digest()).decode()
        self._call(
            "PUT",
            "",
            {"cors": ""},
            body=rules_xml,
            headers={"Content-MD5": digest, "Content-Type": "application/xml"},
            what="setting the bucket's CORS rules",
        )
