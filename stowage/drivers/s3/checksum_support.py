"""Find out, once per process, whether each S3 endpoint and bucket takes CRC32 checksums.

With ``checksum_algorithm="auto"`` (the default), the multipart uploads
stowage sends itself carry a CRC32 of each part, as AWS SDKs send by
default, wherever the server takes them: the service then checks every part
and only combines the parts' checksums on completion, instead of summing
the joined object again. Amazon S3 takes them. An S3-compatible server is
asked once per process, endpoint and bucket, with a one-part multipart
upload under ``.stowage-uploads/`` that declares CRC32 and repeats the
part's checksum in its completion, then deleted. A server that refuses it
(several reject ``x-amz-checksum-*`` headers) gets uploads without the
checksum, said once on the ``stowage.s3`` logger. Bodies of one PUT stay
obstore's, which sends no CRC32.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from typing import TYPE_CHECKING

from stowage.drivers._obstore import UPLOADS_PREFIX
from stowage.drivers.s3.checksums import CHECKSUMS, Checksum
from stowage.drivers.s3.options import S3Options
from stowage.exceptions import ServiceError

if TYPE_CHECKING:  # loaded with the first driver, as the driver loads them
    from stowage.drivers.s3.multipart import MultipartClient
    from stowage.drivers.s3.rest import RestClient

__all__ = ["ACCEPTS_CRC32", "AdditionalChecksums"]

logger = logging.getLogger("stowage.s3")

#: Whether each (endpoint, bucket) takes CRC32 checksums on multipart uploads, as probed.
ACCEPTS_CRC32: dict[tuple[str, str], bool] = {}
_PROBE_LOCK = threading.Lock()
#: The statuses of a server that does not take the checksum (400: refused, 501: unknown).
_REFUSALS = frozenset({400, 501})


class AdditionalChecksums:
    """The S3 driver's part that decides which checksum its own uploads send."""

    options: S3Options
    rest: RestClient
    multipart: MultipartClient

    def upload_checksum(self) -> Checksum | None:
        """Return the checksum stowage's own uploads send (None: none).

        ``"auto"`` is CRC32 on Amazon S3 and on a server that took the probe
        (run here once per process, endpoint and bucket), else none.
        """
        algorithm = self.options.checksum_algorithm
        if algorithm != "auto":
            return CHECKSUMS.get(algorithm or "")
        crc32 = CHECKSUMS["crc32"]
        if not self.rest.reachable:
            return None  # stowage's own client cannot go there: obstore sends the uploads
        endpoint = self.options.endpoint_url
        if not endpoint:
            return crc32
        key = (endpoint.rstrip("/"), self.options.bucket_name)
        accepted = ACCEPTS_CRC32.get(key)
        if accepted is None:
            with _PROBE_LOCK:
                accepted = ACCEPTS_CRC32.get(key)
                if accepted is None:
                    accepted = ACCEPTS_CRC32[key] = self._probe_checksums(*key, crc32)
        return crc32 if accepted else None

    def _probe_checksums(self, endpoint: str, bucket: str, crc32: Checksum) -> bool:
        key = f"{UPLOADS_PREFIX}/checksum-probe-{secrets.token_hex(8)}"
        try:
            upload_id = self.multipart.create(key, {"x-amz-checksum-algorithm": crc32.name})
            try:
                part = self.multipart.upload_part(key, upload_id, 1, b"probe", checksum=crc32)
                self.multipart.complete(key, upload_id, [part], checksum=crc32)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.multipart.abort(key, upload_id)
                raise
            self.rest.call("DELETE", key, what=f"deleting {key!r}")
        except ServiceError as exc:
            from stowage.drivers.s3.rest import refusal_status

            if refusal_status(exc) in _REFUSALS:
                logger.info(
                    "The S3 server at %s refuses CRC32 checksums on bucket %r (%s): uploads "
                    "there carry none. Set checksum_algorithm=None to skip this check.",
                    endpoint,
                    bucket,
                    exc,
                )
                return False
            raise type(exc)(
                f"{exc} (stowage checks once whether the server takes CRC32 checksums, which "
                f"needs writes under {UPLOADS_PREFIX}/; allow them, or set option "
                "checksum_algorithm=None to send none and skip the check)"
            ) from exc
        return True
