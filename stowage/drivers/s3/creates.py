"""Create a large object with one multipart upload straight to its key, only if the key is free.

:func:`create_in_parts` starts a multipart upload on the key itself, with
every header the object gets (:func:`object_headers`), uploads the body's
parts and completes the upload with ``If-None-Match: *``: S3 refuses the
completion (412, or 409 while another conditional write is in flight) when
the key is taken, and the object appears whole or not at all. The same
upload without the condition overwrites, and :func:`put_whole` stores a
small body in one PUT: with these stowage sends the uploads obstore cannot
(CRC32 checksums, :mod:`~stowage.drivers.s3.checksums`).

A :class:`PartReader` reads the parts from the stream in order, on the
calling thread, into ``concurrency`` buffers it reuses; up to that many
parts go up at once on worker threads, and reading waits for a buffer to
come back, so memory holds ``concurrency`` parts at most. A failed part is
sent again from its buffer on the driver's retry policy. Whatever fails (a
part, the completion, or the stream itself) the upload is aborted before the
error propagates: the source's own error stays the one raised, a failed
abort noted on it.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from stowage.drivers._obstore import HEADER_ATTRIBUTES
from stowage.drivers.base import MiB, Readable
from stowage.drivers.retry import transient
from stowage.drivers.s3.checksums import Checksum
from stowage.drivers.s3.multipart import MultipartClient, Part
from stowage.drivers.s3.options import S3Options
from stowage.drivers.s3.rest import answered
from stowage.records import record

__all__ = [
    "COPY_PART",
    "Created",
    "PartReader",
    "copy_in_parts",
    "create_in_parts",
    "object_attributes",
    "object_headers",
    "put_whole",
]

#: The most one request copies of an object (S3 takes up to 5 GiB); larger copies go in parts.
COPY_PART = 1024 * MiB


def object_headers(
    attributes: Mapping[str, str], options: S3Options, checksum: Checksum | None
) -> dict[str, str]:
    """Return the headers of a new object with ``attributes``, as obstore sends them.

    Content headers as they are, ``Storage-Class`` as ``x-amz-storage-class``,
    any other attribute as user metadata (``x-amz-meta-*``), then the
    options' server-side encryption and the upload's additional ``checksum``.
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
    if checksum is not None:
        headers["x-amz-checksum-algorithm"] = checksum.name
    return headers


def object_attributes(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the attributes an object's response ``headers`` show: :func:`object_headers` undone.

    Content headers, the storage class (S3 names it only when not STANDARD)
    and user metadata, whatever the case of the header names.
    """
    attributes = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "x-amz-storage-class":
            attributes["Storage-Class"] = value
        elif lowered.startswith("x-amz-meta-"):
            attributes[lowered.removeprefix("x-amz-meta-")] = value
        elif lowered in _CONTENT_HEADERS:
            attributes[_CONTENT_HEADERS[lowered]] = value
    return attributes


#: The content headers among the attributes, by their names in lower case.
_CONTENT_HEADERS = {name.lower(): name for name in HEADER_ATTRIBUTES if name != "Storage-Class"}


class PartReader:
    """Read a body part by part into at most ``buffers`` reused buffers of ``part_size``.

    The first part is read at once, to tell a body that fits in one request
    from a large one (:meth:`whole`). :meth:`take` returns each part in
    turn, waiting while every buffer holds a part not yet given back with
    :meth:`give_back`.
    """

    def __init__(self, stream: Readable, part_size: int, buffers: int) -> None:
        self.part_size = part_size
        self._stream = stream
        # Files and spools fill a buffer themselves; other readers hand over chunks.
        self._readinto = (
            getattr(stream, "readinto", None) if isinstance(stream, io.IOBase) else None
        )
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._unmade = buffers
        self._ended = False
        self._ahead: memoryview | None = self._read()

    def whole(self, limit: int) -> bytes | None:
        """Return the body if it ended within the first part, in at most ``limit`` bytes."""
        ahead = self._ahead
        if ahead is None or not self._ended or len(ahead) > limit:
            return None
        return bytes(ahead)

    def take(self) -> memoryview | None:
        """Return the next part (a view of one buffer), or None past the end of the body."""
        if self._ahead is not None:
            part, self._ahead = self._ahead, None
            return part
        if self._ended:
            return None
        part = self._read()
        if len(part) == 0:
            self.give_back(part)
            return None
        return part

    def give_back(self, part: memoryview) -> None:
        """Let the buffer of ``part``, uploaded, hold a later part."""
        buffer = part.obj
        assert isinstance(buffer, bytearray)
        self._free.put(buffer)

    def _read(self) -> memoryview:
        if self._unmade:
            self._unmade -= 1
            buffer = bytearray(self.part_size)
        else:
            buffer = self._free.get()
        view = memoryview(buffer)
        filled = 0
        while filled < self.part_size:
            if self._readinto is not None:
                count = self._readinto(view[filled:])
            else:
                chunk = self._stream.read(min(MiB, self.part_size - filled))
                count = len(chunk)
                view[filled : filled + count] = chunk
            if not count:
                self._ended = True
                break
            filled += count
        return view[:filled]


@record
class Created:
    """The object a multipart create made: its ETag (if the service said) and size."""

    etag: str | None
    size: int


def create_in_parts(
    client: MultipartClient,
    key: str,
    parts: PartReader,
    *,
    headers: Mapping[str, str],
    concurrency: int,
    checksum: Checksum | None,
    if_absent: bool = True,
) -> Created:
    """Upload the body ``parts`` reads to ``key``, created only if ``key`` is free.

    Raises AlreadyExists when ``key`` is taken; without ``if_absent``
    replaces what ``key`` holds. Leaves no pending upload behind, whatever
    fails.
    """

    def send(upload_id: str) -> list[Part]:
        return _PartSender(client, key, upload_id, concurrency, checksum).send(parts)

    return _complete(client, key, headers, send, checksum=checksum, if_absent=if_absent)


def put_whole(
    client: MultipartClient,
    key: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    checksum: Checksum | None,
    if_absent: bool,
) -> str | None:
    """Store ``body`` under ``key`` in one PUT; return the object's ETag if the answer gives one.

    For what obstore cannot send (a CRC32 checksum). With ``if_absent``
    the object is created only if ``key`` is free, else AlreadyExists is
    raised, and the PUT is sent again only after the service's own 5xx
    answer: after a lost connection it may have taken effect.
    """
    sent = dict(headers)
    if checksum is not None:
        # Named twice, as AWS SDKs do: some servers (moto) keep the value only then.
        sent[checksum.header] = checksum.of(body)
        sent["x-amz-sdk-checksum-algorithm"] = checksum.name
    if if_absent:
        sent["If-None-Match"] = "*"
    answer = client.rest.call(
        "PUT",
        key,
        body=body,
        headers=sent,
        what=f"writing {key!r}",
        retryable=answered if if_absent else transient,
    )
    return answer.headers.get("ETag", "").strip('"') or None


def copy_in_parts(
    client: MultipartClient,
    source: str,
    key: str,
    *,
    options: S3Options,
    checksum: Checksum | None,
    concurrency: int,
    attributes: Mapping[str, str] | None = None,
) -> Created:
    """Copy the object ``source`` to ``key``, created only if ``key`` is free.

    S3 copies no header into a multipart upload, so the upload is created
    with the headers a HEAD of ``source`` shows, or with ``attributes``
    where given (and the ``options``' encryption). The bytes are copied on
    the service, in parts of at most :data:`COPY_PART`, ``concurrency`` at
    once. Raises AlreadyExists when ``key`` is taken; leaves no pending
    upload behind, whatever fails.
    """
    found = client.rest.call("HEAD", source, what=f"inspecting {source!r}").headers
    size = int(found.get("Content-Length", "0"))
    kept = object_attributes(found) if attributes is None else attributes
    headers = object_headers(kept, options, checksum)
    ranges = [(0, -1)]  # an empty object is copied whole
    if size:
        step = -(-size // -(-size // COPY_PART))  # equal parts, as few as COPY_PART allows
        ranges = [(first, min(first + step, size) - 1) for first in range(0, size, step)]

    def copy(upload_id: str) -> list[Part]:
        def one(number: int) -> Part:
            first, last = ranges[number - 1]
            return client.copy_part(key, upload_id, number, source, first, last, checksum=checksum)

        if len(ranges) == 1:
            return [one(1)]
        with ThreadPoolExecutor(min(concurrency, len(ranges))) as pool:
            return list(pool.map(one, range(1, len(ranges) + 1)))

    return _complete(client, key, headers, copy, checksum=checksum, if_absent=True)


def _complete(
    client: MultipartClient,
    key: str,
    headers: Mapping[str, str],
    fill: Callable[[str], list[Part]],
    *,
    checksum: Checksum | None,
    if_absent: bool,
) -> Created:
    """Start an upload to ``key``, ``fill`` its parts, complete it (``if_absent``: if free).

    Whatever fails, the upload is aborted before the error propagates.
    """
    upload_id = client.create(key, headers)
    try:
        parts = fill(upload_id)
        etag = client.complete(key, upload_id, parts, if_absent=if_absent, checksum=checksum)
    except BaseException as exc:
        try:
            client.abort(key, upload_id)
        except Exception as failure:
            exc.add_note(f"Aborting the multipart upload failed too: {str(failure)[:200]}")
        raise
    return Created(etag, sum(part.size for part in parts))


class _PartSender:
    """Upload one body's parts on ``concurrency`` worker threads."""

    def __init__(
        self,
        client: MultipartClient,
        key: str,
        upload_id: str,
        concurrency: int,
        checksum: Checksum | None,
    ) -> None:
        self._client = client
        self._key = key
        self._upload_id = upload_id
        self._concurrency = concurrency
        self._checksum = checksum
        self._failed = threading.Event()

    def send(self, parts: PartReader) -> list[Part]:
        """Upload every part ``parts`` reads; return them all, in order."""
        futures: list[Future[Part]] = []
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="stowage-s3-part")
        try:
            while not self._failed.is_set() and (body := parts.take()) is not None:
                futures.append(pool.submit(self._upload, parts, len(futures) + 1, body))
                del body  # its buffer is the upload's until it is given back
        except BaseException:
            self._failed.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        # The first failed part, if any, raises here.
        return [future.result() for future in futures]

    def _upload(self, parts: PartReader, number: int, body: memoryview) -> Part:
        try:
            return self._client.upload_part(
                self._key, self._upload_id, number, body, checksum=self._checksum
            )
        except BaseException:
            self._failed.set()
            raise
        finally:
            parts.give_back(body)
