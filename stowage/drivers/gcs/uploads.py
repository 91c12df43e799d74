"""Write objects: one request for a small body, a resumable upload for a large one.

A body of at most 8 MiB goes up in one multipart request, with its
checksum; a larger one in a resumable upload
(:mod:`~stowage.drivers.gcs.streaming`): streamed in one request when its
size is known and its stream can seek, else sent ``blob_chunk_size`` bytes
at a time, so memory stays bounded whatever the size. ``if_absent`` adds
``ifGenerationMatch=0``, an atomic create. A stream that fails midway
leaves its resumable upload unfinished, and an unfinished upload never
becomes an object.

Retries: a small body is in hand, so its request is sent again as a whole
under the retry policy; a create that finds the name taken on a retry
compares the object there with the body, since the first attempt may have
stored it before its answer was lost. A large body that can seek is sent
again from its start in a new session; one read once is never started
again, and each of its requests (the session's start, each chunk) is
retried on its own, with the chunk in hand.

With ``gzip``, bodies of the ``gzip_content_types`` are stored
gzip-compressed (``Content-Encoding: gzip``, served decompressed to clients
that do not accept gzip), their original size kept in the object's metadata.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import re
import secrets
from collections.abc import Mapping
from typing import IO, Any, Final

from stowage.drivers import _gzip
from stowage.drivers.base import MiB, ObjectInfo, Readable
from stowage.drivers.gcs import errors
from stowage.drivers.gcs.connection import Connection
from stowage.drivers.gcs.options import check_object_parameters
from stowage.drivers.gcs.reading import Reader, resource_info
from stowage.drivers.gcs.streaming import can_stream, put_chunked, put_streamed
from stowage.exceptions import AlreadyExists, NotFound, translate

__all__ = ["UploadSource", "Uploader"]

#: Bodies up to this size go up in one request (the client library's multipart limit).
_MULTIPART_LIMIT: Final = 8 * MiB
#: What a reader that is not a file object is asked for at a time.
_READ_BLOCK: Final = 1 * MiB
#: The JSON API's names of the properties an upload sets.
_FIELDS: Final = {
    "cache_control": "cacheControl",
    "content_disposition": "contentDisposition",
    "content_language": "contentLanguage",
    "storage_class": "storageClass",
    "content_encoding": "contentEncoding",
}
#: What may not stand in a part's header.
_LINE_BREAK: Final = re.compile(r"[\r\n]")


def _checksum(data: bytes) -> dict[str, str]:
    """Return the resource field that makes the service check ``data`` as it arrives.

    CRC32C where google-crc32c has its compiled implementation (a tenth of
    MD5's CPU), else MD5.
    """
    try:
        import google_crc32c
    except ImportError:
        pass
    else:
        if google_crc32c.implementation == "c":
            crc = google_crc32c.value(data).to_bytes(4, "big")
            return {"crc32c": base64.b64encode(crc).decode("ascii")}
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return {"md5Hash": base64.b64encode(digest).decode("ascii")}


def _resource(
    key: str,
    content_type: str | None,
    properties: Mapping[str, str],
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """Return the resource an upload of ``key`` sends: its name and properties, in JSON names."""
    fields: dict[str, Any] = {"name": key}
    fields.update((_FIELDS[name], value) for name, value in properties.items())
    if content_type:
        fields["contentType"] = content_type
    if metadata:
        fields["metadata"] = dict(metadata)
    return fields


class UploadSource:
    """Give a chunked upload a caller's stream as it needs it: full reads.

    ``read(n)`` returns ``n`` bytes unless the stream ended. Bytes read
    ahead to choose the upload method are served again first (the same
    object, no copy). An error raised by the caller's stream is remembered
    so it can propagate unchanged instead of looking like a service failure.
    """

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        # A file object returns a whole chunk in one read, copied once; other
        # readers (which may buffer and copy what they return) are asked for
        # less at a time, so their transient copies stay small.
        self._block = 64 * MiB if isinstance(stream, io.IOBase) else _READ_BLOCK
        self._pos = 0
        self._replay = b""
        self._ended = False
        self.error: BaseException | None = None

    def tell(self) -> int:
        """Return how many bytes the reader consumed."""
        return self._pos

    def unread(self, data: bytes) -> None:
        """Serve ``data``, the bytes last read, again before the rest of the stream."""
        if self._replay or len(data) > self._pos:
            raise io.UnsupportedOperation("only the last read can be served again")
        self._replay = data
        self._pos -= len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Stay where the stream is: a one-pass stream cannot move."""
        if whence == io.SEEK_SET and offset == self._pos:
            return offset
        raise io.UnsupportedOperation(f"cannot seek to {offset}: the stream is read once")

    def read(self, size: int = -1, /) -> bytes:
        """Return ``size`` bytes, fewer only at the end of the stream."""
        parts: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        if self._replay:
            take = self._replay if want >= len(self._replay) else self._replay[:want]
            self._replay = self._replay[len(take) :]
            parts.append(take)
            want -= len(take)
        while want > 0 and not self._ended:
            try:
                chunk = self._stream.read(min(want, self._block))
            except BaseException as exc:
                self.error = exc
                raise
            if not chunk:
                self._ended = True
                break
            parts.append(chunk)
            want -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(data)
        return data


class Uploader:
    """Write objects of one bucket, ``chunk`` bytes per request of a resumable upload."""

    def __init__(self, connection: Connection, reader: Reader, chunk: int) -> None:
        self._conn = connection
        self._reader = reader
        self._chunk = chunk

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None,
        content_type: str | None,
        if_absent: bool,
        cache_control: str | None,
        metadata: Mapping[str, str] | None,
        object_parameters: Mapping[str, Any] | None,
    ) -> ObjectInfo:
        """Upload ``stream`` to ``key``: in one request, or past 8 MiB in a resumable upload.

        A large body of known ``size`` that can seek goes up in one streamed
        request (:mod:`~stowage.drivers.gcs.streaming`); any other in chunks.
        """
        conn = self._conn
        options = conn.options
        params = options.object_parameters
        if object_parameters is not None:
            check_object_parameters(object_parameters)
            params = object_parameters
        # The configured content type wins over the name-based guess, as in
        # django-storages; a per-call cache_control or metadata wins over the
        # configured defaults because it is the more specific.
        content_type = params.get("content_type") or content_type
        encoding = params.get("content_encoding")
        base_type = (content_type or "").split(";", 1)[0].strip().lower()
        compress = options.gzip and encoding is None and base_type in options.gzip_content_types
        given = {
            "cache_control": cache_control or params.get("cache_control"),
            "content_disposition": params.get("content_disposition"),
            "content_language": params.get("content_language"),
            "storage_class": params.get("storage_class"),
            "content_encoding": "gzip" if compress else encoding,
        }
        properties: dict[str, str] = {name: v for name, v in given.items() if v is not None}
        user_metadata = {**params.get("metadata", {}), **(metadata or {})}
        what = conn.what("writing", key)
        acl = params.get("acl") or options.default_acl
        if not compress and size is not None and size > _MULTIPART_LIMIT and can_stream(stream):
            fields = _resource(key, content_type, properties, user_metadata)
            return resource_info(self._streamed(what, fields, stream, size, acl, if_absent))
        source = UploadSource(stream)
        spool = None
        try:
            if compress:
                spool, plain_size = _gzip.compress(source)
                user_metadata[_gzip.PLAIN_SIZE_KEY] = str(plain_size)
                stored = spool.seek(0, io.SEEK_END)
                spool.seek(0)
                fields = _resource(key, content_type, properties, user_metadata)
                if stored > _MULTIPART_LIMIT:
                    resource = self._streamed(what, fields, spool, stored, acl, if_absent)
                    return resource_info(resource)
                body = spool.read()
            else:
                fields = _resource(key, content_type, properties, user_metadata)
                body = source.read(_MULTIPART_LIMIT)
                if len(body) == _MULTIPART_LIMIT:
                    # Length unknown from here on: a resumable upload, whose first
                    # chunk replays the bytes already read.
                    source.unread(body)
                    del body  # the source holds it until sent, and no longer
                    self._refuse_taken(what, key, if_absent)
                    resource = put_chunked(
                        conn,
                        what,
                        fields,
                        source,
                        self._chunk,
                        predefined_acl=acl,
                        if_absent=if_absent,
                    )
                    return resource_info(resource)
            resource = self._send_whole(what, body, fields, acl=acl, if_absent=if_absent)
        except Exception as exc:
            if source.error is not None and exc is source.error:
                raise
            mapper = errors.mapper(what, bucket=conn.bucket_name, creating=if_absent, reading=False)
            with translate(what, mapper):
                raise
        finally:
            if spool is not None:
                spool.close()
        return resource_info(resource)

    def _streamed(
        self,
        what: str,
        fields: dict[str, Any],
        stream: IO[bytes],
        size: int,
        acl: str | None,
        if_absent: bool,
    ) -> dict[str, Any]:
        """Send ``size`` bytes of a seekable ``stream`` in one streamed request."""
        key = fields["name"]
        self._refuse_taken(what, key, if_absent)
        landed = functools.partial(self._holding, key, stream, stream.tell())
        return put_streamed(
            self._conn,
            what,
            fields,
            stream,
            size,
            predefined_acl=acl,
            if_absent=if_absent,
            landed=landed,
        )

    def _refuse_taken(self, what: str, key: str, if_absent: bool) -> None:
        """Refuse a create of a large body under a taken name before sending it.

        ``ifGenerationMatch=0`` still settles races; this saves sending a large
        body only to have it refused when the upload completes.
        """
        if if_absent and self._reader.exists(key):
            raise AlreadyExists(f"{what}: the name is already taken.")

    def _send_whole(
        self, what: str, data: bytes, fields: dict[str, Any], *, acl: str | None, if_absent: bool
    ) -> dict[str, Any]:
        """Send a body in hand in one multipart upload, whole at each try; return its resource.

        The body's checksum goes with it: the service refuses a body that
        arrives otherwise.
        """
        conn = self._conn
        path, query = conn.path_of()
        if if_absent:
            query["ifGenerationMatch"] = "0"
        if acl:
            query["predefinedAcl"] = acl
        fields.update(_checksum(data))
        media_type = fields.get("contentType") or "application/octet-stream"
        if _LINE_BREAK.search(media_type):
            raise ValueError(f"Invalid content type {media_type!r}: it holds a line break")
        boundary = secrets.token_hex(16)
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(fields)}\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n"
        )
        body = (head.encode(), data, f"\r\n--{boundary}--\r\n".encode())
        content_type = f'multipart/related; boundary="{boundary}"'

        def send() -> dict[str, Any]:
            return conn.json.upload(path, query, body, content_type)

        if if_absent:
            return conn.create(
                what,
                send,
                landed=lambda: self._holding(fields["name"], io.BytesIO(data)),
                reading=False,
            )
        return conn.call(what, send, reading=False)

    def _holding(self, key: str, body: IO[bytes], start: int = 0) -> dict[str, Any] | None:
        """Return the object's resource at ``key`` if it holds ``body`` from ``start``, else None.

        The same MD5 says so. Only asked after a failed try. Another writer's object of the same
        bytes under the name is then taken for this call's: both report a create.
        """
        try:
            stored = self._reader.metadata(key)
        except NotFound:
            return None
        digest = hashlib.md5(usedforsecurity=False)
        body.seek(start)
        while block := body.read(_READ_BLOCK):
            digest.update(block)
        sent = base64.b64encode(digest.digest()).decode("ascii")
        return stored if stored.get("md5Hash") == sent else None
