"""The additional checksums stowage's own S3 calls compute: CRC32 and SHA-256.

S3 takes one per upload (``x-amz-checksum-algorithm`` when a multipart
upload starts), one per request body (``x-amz-checksum-crc32``, …) and, for
each part, the same value again in the completion (``<ChecksumCRC32>``).
CRC32 is what AWS SDKs send by default; CRC64-NVME is left to obstore, as
Python computes it too slowly.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from stowage.records import record

if TYPE_CHECKING:  # its HTTP modules load with the first driver, not with the backend
    from stowage.drivers.exchange import Body

__all__ = ["CHECKSUMS", "Checksum"]


@record
class Checksum:
    """One algorithm: its name in S3's headers and documents, and how to compute it."""

    #: S3's name: "CRC32", "SHA256".
    name: str
    digest: Callable[[Body], bytes]

    @property
    def header(self) -> str:
        """The request header carrying a body's checksum."""
        return f"x-amz-checksum-{self.name.lower()}"

    @property
    def element(self) -> str:
        """The XML element carrying a part's checksum."""
        return f"Checksum{self.name}"

    def of(self, body: Body) -> str:
        """Return ``body``'s checksum in base64, as S3 takes it."""
        return base64.b64encode(self.digest(body)).decode()


def _crc32(body: Body) -> bytes:
    # zlib releases the GIL over large buffers, so parts are summed in parallel.
    return zlib.crc32(body).to_bytes(4, "big")


def _sha256(body: Body) -> bytes:
    return hashlib.sha256(body).digest()


#: The algorithms stowage computes itself, by the option's value.
CHECKSUMS = {"crc32": Checksum("CRC32", _crc32), "sha256": Checksum("SHA256", _sha256)}
