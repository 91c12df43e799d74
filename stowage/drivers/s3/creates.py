"""Create a large object with one multipart upload straight to its key, only if the key is free.

:func:`create_in_parts` starts a multipart upload on the key itself, with
every header the object gets (:func:`object_headers`), uploads the body's
parts and completes the upload with ``If-None-Match: *``: S3 refuses the
completion (412, or 409 while another conditional write is in flight) when
the key is taken, and the object appears whole or not at all.

The parts are read from the stream in order, on the calling thread, and
uploaded on up to ``concurrency`` worker threads; a part is read only when
one of ``concurrency`` slots is free, so at most that many parts are held in
memory. A failed part is sent again from its buffer on the driver's retry
policy. Whatever fails (a part, the completion, or the stream itself) the
upload is aborted before the error propagates: the source's own error stays
the one raised, a failed abort noted on it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from stowage.drivers._obstore import HEADER_ATTRIBUTES
from stowage.drivers.base import MiB, Readable
from stowage.drivers.s3.multipart import MultipartClient, Part
from stowage.drivers.s3.options import S3Options

__all__ = ["Created", "create_in_parts", "object_headers", "read_part"]


def object_headers(attributes: Mapping[str, str], options: S3Options) -> dict[str, str]:
    """Return the headers of a new object with ``attributes``, as obstore sends them.

    Content headers as they are, ``Storage-Class`` as ``x-amz-storage-class``,
    any other attribute as user metadata (``x-amz-meta-*``), then the
    options' server-side encryption and additional checksum algorithm.
    """
    headers = {}
    for name, value in attributes.items():
        if name == "Storage-Class":
            headers["x-amz-storage-class"] = value
        elif name in HEADER_ATTRIBUTES:
            headers[name] = value
        else:
            headers[f"x-amz-meta-{name}"] = value
    if options.server_side_encryption:
        headers["x-amz-server-side-encryption"] = options.server_side_encryption
        if options.sse_kms_key_id and options.server_side_encryption.startswith("aws:kms"):
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = options.sse_kms_key_id
    if options.checksum_algorithm == "sha256":
        headers["x-amz-checksum-algorithm"] = "SHA256"
    return headers


def read_part(stream: Readable, size: int) -> memoryview:
    """Read up to ``size`` bytes of ``stream`` into one new buffer; fewer only at its end."""
    buffer = memoryview(bytearray(size))
    filled = 0
    # Files and spools fill the buffer themselves; other readers hand over chunks.
    readinto = getattr(stream, "readinto", None) if isinstance(stream, io.IOBase) else None
    while filled < size:
        if readinto is not None:
            count = readinto(buffer[filled:])
        else:
            chunk = stream.read(min(MiB, size - filled))
            count = len(chunk)
            buffer[filled : filled + count] = chunk
        if not count:
            break
        filled += count
    return buffer[:filled]


@dataclass(frozen=True)
class Created:
    """The object a multipart create made: its ETag (if the service said) and size."""

    etag: str | None
    size: int


def create_in_parts(
    client: MultipartClient,
    key: str,
    first: memoryview,
    stream: Readable,
    *,
    headers: Mapping[str, str],
    part_size: int,
    concurrency: int,
    checksum: bool,
) -> Created:
    """Upload ``first`` and the rest of ``stream`` to ``key``, created only if it is free.

    ``first`` is the body's first part, already read (a full ``part_size``
    unless it is the whole body). Raises AlreadyExists when ``key`` is
    taken; leaves no pending upload behind, whatever fails.
    """
    upload_id = client.create(key, headers)
    try:
        sender = _PartSender(client, key, upload_id, concurrency, checksum)
        parts = sender.send(first, stream, part_size)
        etag = client.complete(key, upload_id, parts, if_absent=True)
    except BaseException as exc:
        try:
            client.abort(key, upload_id)
        except Exception as failure:
            exc.add_note(f"Aborting the multipart upload failed too: {str(failure)[:200]}")
        raise
    return Created(etag, sum(part.size for part in parts))


class _PartSender:
    """Upload one body's parts on worker threads, at most ``concurrency`` in memory."""

    def __init__(
        self, client: MultipartClient, key: str, upload_id: str, concurrency: int, checksum: bool
    ) -> None:
        self._client = client
        self._key = key
        self._upload_id = upload_id
        self._concurrency = concurrency
        self._checksum = checksum
        self._slots = threading.Semaphore(concurrency)
        self._failed = threading.Event()

    def send(self, first: memoryview, stream: Readable, part_size: int) -> list[Part]:
        """Upload ``first``, then each part read from ``stream``; return them all, in order."""
        futures: list[Future[Part]] = []
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="stowage-s3-part")
        try:
            self._slots.acquire()
            body = first
            while True:
                futures.append(pool.submit(self._upload, len(futures) + 1, body))
                if len(body) < part_size:
                    break
                self._slots.acquire()
                if self._failed.is_set():
                    break
                body = read_part(stream, part_size)
                if len(body) == 0:
                    break
        except BaseException:
            self._failed.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        # The first failed part, if any, raises here.
        return [future.result() for future in futures]

    def _upload(self, number: int, body: memoryview) -> Part:
        try:
            return self._client.upload_part(
                self._key, self._upload_id, number, body, checksum=self._checksum
            )
        except BaseException:
            self._failed.set()
            raise
        finally:
            self._slots.release()
