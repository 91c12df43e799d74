"""The driver every obstore-backed service shares (see the package's docstring)."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import obstore
from obstore import exceptions as obstore_errors

from stowage.drivers import _gzip
from stowage.drivers._obstore.bodies import (
    Source,
    object_info,
    read_up_to,
    written,
)
from stowage.drivers._obstore.errors import map_error, range_not_satisfiable, retry_delete
from stowage.drivers.base import (
    UPLOADS_PREFIX,
    AsyncDownload,
    Download,
    Driver,
    MiB,
    ObjectInfo,
    Prefix,
    Readable,
    in_thread,
)
from stowage.drivers.options import ObjectStoreOptions
from stowage.exceptions import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    translate,
)

__all__ = ["ObstoreDriver"]


_OO = TypeVar("_OO", bound=ObjectStoreOptions)


class ObstoreDriver(Driver[_OO]):
    """Move bytes with an obstore store; subclasses configure the service."""

    #: Most parts the service takes in one multipart upload.
    max_parts: ClassVar[int] = 10_000

    def __init__(self, options: _OO) -> None:
        super().__init__(options)
        self._lock = threading.Lock()
        self._store: Any = None
        self._base_attributes: dict[str, str] = {}
        #: Bodies up to this size go up in one request (held in memory, this size at most).
        self.multipart_threshold = options.multipart_threshold
        #: Part size of multipart uploads, raised for bodies that would need more parts.
        self.multipart_chunksize = options.multipart_chunksize
        #: Parts uploaded at once; each holds one part in memory.
        self.multipart_concurrency = options.multipart_concurrency
        #: Retries of a delete that got no reply (see :func:`retry_delete`).
        self._retry = options.retry_policy()

    def _make_store(self) -> Any:
        """Return a new obstore store for this driver's options."""
        raise NotImplementedError

    def _finish_create(self, staged: str, key: str) -> None:
        """Copy the staged upload to ``key`` only if ``key`` is free (else AlreadyExists)."""
        obstore.copy(self.store, staged, key, overwrite=False)

    def _creates_atomically(self) -> bool:
        """Tell whether the service refuses a conditional create of a taken key.

        A subclass whose service may ignore the condition finds out here (it
        may do I/O once); False routes creates to :meth:`_put_best_effort`.
        """
        return True

    async def _acreates_atomically(self) -> bool:
        """Do :meth:`_creates_atomically` without blocking the event loop."""
        return self._creates_atomically()

    @property
    def store(self) -> Any:
        """Return the obstore client, created on first use."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._make_store()
        return self._store

    def close(self) -> None:
        """Drop the client; a new one is made on next use."""
        with self._lock:
            self._store = None

    #: ``object_parameters`` keys and the attribute each becomes (the service's names).
    parameter_headers: ClassVar[Mapping[str, str]] = {}
    #: The ``object_parameters`` key holding user metadata.
    metadata_parameter: ClassVar[str] = "metadata"

    def object_attributes(self, parameters: Mapping[str, Any]) -> dict[str, str]:
        """Turn ``object_parameters`` (the option's form) into obstore attributes."""
        headers, metadata = self.parameter_headers, self.metadata_parameter
        unknown = set(parameters) - set(headers) - {metadata}
        if unknown:
            raise ConfigurationError(
                f"Object parameters {sorted(unknown)} are not supported; "
                f"valid: {[*sorted(headers), metadata]}."
            )
        attributes = {headers[k]: str(v) for k, v in parameters.items() if k in headers}
        for name, value in dict(parameters.get(metadata, {})).items():
            attributes[str(name)] = str(value)
        return attributes

    def _attributes(
        self,
        content_type: str | None,
        cache_control: str | None,
        metadata: Mapping[str, str] | None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        if object_parameters is None:
            attributes = dict(self._base_attributes)
        else:
            attributes = self.object_attributes(object_parameters)
        if content_type and "Content-Type" not in attributes:
            attributes["Content-Type"] = content_type
        if cache_control:
            attributes["Cache-Control"] = cache_control
        attributes.update(metadata or {})
        return attributes

    def put_attributes(self, content_type: str) -> dict[str, str]:
        """Return the attributes a put of a ``content_type`` body stores, from the options."""
        return self._attributes(content_type, None, None)

    def compresses(self, attributes: Mapping[str, str]) -> bool:
        """Tell whether a put with ``attributes`` stores its body gzip-compressed (``gzip``)."""
        return (
            getattr(self.options, "gzip", False)
            and "Content-Encoding" not in attributes
            and _gzip.wants_gzip(
                attributes.get("Content-Type"), getattr(self.options, "gzip_content_types", ())
            )
        )

    def put_adds_to(self, content_type: str) -> bool:
        """Tell whether a put adds headers (``object_parameters``) or compresses (``gzip``)."""
        attributes = self.put_attributes(content_type)
        return attributes != {"Content-Type": content_type} or self.compresses(attributes)

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> ObjectInfo:
        """Upload ``stream`` in one PUT or in parts (see the module docstring)."""
        attributes = self._attributes(content_type, cache_control, metadata, object_parameters)
        return self._put(key, stream, size, attributes, if_absent=if_absent)

    def _put(
        self,
        key: str,
        stream: Readable,
        size: int | None,
        attributes: dict[str, str],
        *,
        if_absent: bool,
    ) -> ObjectInfo:
        if if_absent and not self._creates_atomically():
            return self._put_best_effort(key, stream, size, attributes)
        small = size is not None and size <= self.multipart_threshold
        with translate(f"writing {key!r}", map_error):
            if small:
                body = read_up_to(stream, self.multipart_threshold)
                return self._put_whole(key, body, attributes, if_absent=if_absent)
            target = f"{UPLOADS_PREFIX}/{secrets.token_hex(16)}" if if_absent else key
            self._put_parts(target, stream, size, attributes)
            if if_absent:
                try:
                    self._finish_create(target, key)
                finally:
                    obstore.delete(self.store, target)
            return self.head(key)

    def _put_whole(
        self, key: str, body: bytes, attributes: dict[str, str], *, if_absent: bool
    ) -> ObjectInfo:
        """Store ``body`` under ``key`` in one PUT (``if_absent``: only if ``key`` is free)."""
        mode: Literal["create", "overwrite"] = "create" if if_absent else "overwrite"
        result = obstore.put(
            self.store, key, body, attributes=attributes, mode=mode, use_multipart=False
        )
        return written(key, len(body), result, attributes)

    def _put_parts(
        self, target: str, stream: Readable, size: int | None, attributes: dict[str, str]
    ) -> None:
        source = Source(stream)
        try:
            obstore.put(
                self.store,
                target,
                iter(source),
                attributes=attributes,
                use_multipart=True,
                chunk_size=self.part_size(size),
                max_concurrency=self.multipart_concurrency,
            )
        except Exception as exc:
            # After a failed read obstore aborts the upload; a server that cannot
            # abort (405) would otherwise hide the reader's error behind its own.
            if source.error is None or exc is source.error:
                raise
            source.error.add_note(f"Aborting the upload failed too: {str(exc)[:200]}")
            raise source.error from None

    def _put_best_effort(
        self, key: str, stream: Readable, size: int | None, attributes: dict[str, str]
    ) -> ObjectInfo:
        """Create ``key`` on a service that ignores conditional writes, as safely as it can.

        Staging keeps a partial body from ever showing under ``key`` and
        shrinks the window between the last check and the commit from the
        whole upload to one round trip (see the module docstring).
        """
        staged = f"{UPLOADS_PREFIX}/{secrets.token_hex(16)}"
        try:
            with translate(f"writing {key!r}", map_error):
                if size is not None and size <= self.multipart_threshold:
                    body = read_up_to(stream, self.multipart_threshold)
                    stored = self._put_whole(staged, body, attributes, if_absent=False).size
                else:
                    self._put_parts(staged, stream, size, attributes)
                    stored = -1
            if self._is_object(key):
                raise AlreadyExists(f"{key!r} already exists.")
            # Measured on the staged copy, not on ``key``: on some servers a HEAD
            # of a key that a concurrent copy is replacing answers 404 for a moment.
            if stored < 0:
                stored = ObstoreDriver.head(self, staged).size
            with translate(f"writing {key!r}", map_error):
                obstore.copy(self.store, staged, key, overwrite=True)
        except BaseException:
            # The original error matters more than a leftover under the hidden prefix.
            with contextlib.suppress(Exception):
                obstore.delete(self.store, staged)
            raise
        with translate(f"writing {key!r}", map_error):
            obstore.delete(self.store, staged)
        # No etag: a copy of a multipart upload gets a new one, which only a HEAD would tell.
        return ObjectInfo(
            key=key,
            size=stored,
            content_type=attributes.get("Content-Type"),
            modified=dt.datetime.now(dt.UTC),
        )

    def _is_object(self, key: str) -> bool:
        try:
            ObstoreDriver.head(self, key)
        except NotFound:
            return False
        return True

    def part_size(self, size: int | None) -> int:
        """Return the part size for a body of ``size`` bytes (None: unknown).

        ``multipart_chunksize`` unless the body would need more than
        ``max_parts`` parts of it; then the smallest whole number of MiB that
        fits. A body of unknown size gets ``multipart_chunksize`` and so can
        be at most ``max_parts`` times that long.
        """
        if size is None:
            return self.multipart_chunksize
        needed = -(-size // self.max_parts)
        return max(self.multipart_chunksize, -(-needed // MiB) * MiB)

    # -- reading ------------------------------------------------------------------------

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` from ``start`` to ``end`` with one ranged GET."""
        if end is not None and end <= start:
            return Download(self.head(key), [])
        options: dict[str, Any] = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        with translate(f"reading {key!r}", map_error):
            try:
                result = obstore.get(self.store, key, options=options)  # type: ignore[arg-type]
            except obstore_errors.BaseError as exc:
                if not range_not_satisfiable(exc):
                    raise
                # Past the end (or an empty object): nothing to read.
                return Download(self.head(key), [])
        info = object_info(result.meta, result.attributes)
        stream = result.stream(min_chunk_size=256 * 1024)

        def chunks() -> Iterator[bytes]:
            with translate(f"reading {key!r}", map_error):
                for chunk in stream:
                    yield bytes(chunk)

        return Download(info, chunks())

    def head(self, key: str) -> ObjectInfo:
        """Describe ``key`` with one HEAD request, headers included."""
        with translate(f"inspecting {key!r}", map_error):
            result = obstore.get(self.store, key, options={"head": True})
        return object_info(result.meta, result.attributes)

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error (Azure says 404, S3 does not)."""

        def once() -> None:
            with contextlib.suppress(NotFound), translate(f"deleting {key!r}", map_error):
                obstore.delete(self.store, key)

        self._retry.run(once, retryable=retry_delete)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List with a delimiter (one level) or flat (recursive), every page."""
        with translate(f"listing {prefix!r}", map_error):
            if recursive:
                for page in obstore.list(self.store, prefix or None, chunk_size=1000):
                    for meta in page:
                        if not meta["path"].startswith(UPLOADS_PREFIX + "/"):
                            yield object_info(meta)
                return
            result = obstore.list_with_delimiter(self.store, prefix or None)
        for common in result["common_prefixes"]:
            if common.rstrip("/") != UPLOADS_PREFIX:
                yield Prefix(common.rstrip("/"))
        for meta in result["objects"]:
            yield object_info(meta)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy on the service, headers and metadata included."""
        with translate(f"copying {src!r}", map_error):
            obstore.copy(self.store, src, dst, overwrite=True)
        return self.head(dst)

    def copy_new(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` only if ``dst`` is free (atomic); else raise AlreadyExists."""
        with translate(f"copying {src!r} to {dst!r}", map_error):
            self._finish_create(src, dst)

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` on obstore's async client."""
        with translate(f"inspecting {key!r}", map_error):
            result = await obstore.get_async(self.store, key, options={"head": True})
        return object_info(result.meta, result.attributes)

    async def aexists(self, key: str) -> bool:
        """Tell whether ``key`` is an object or a non-empty directory, asynchronously."""
        try:
            await self.ahead(key)
        except NotFound:
            with translate(f"listing {key!r}", map_error):
                page = await obstore.list_with_delimiter_async(self.store, key)
            return bool(page["objects"] or page["common_prefixes"])
        return True

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` on obstore's async client."""

        async def once() -> None:
            with contextlib.suppress(NotFound), translate(f"deleting {key!r}", map_error):
                await obstore.delete_async(self.store, key)

        await self._retry.arun(once, retryable=retry_delete)

    async def aput(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> ObjectInfo:
        """Do :meth:`put` on obstore's async client for bodies of one PUT."""
        best_effort = if_absent and not await self._acreates_atomically()
        if best_effort or size is None or size > self.multipart_threshold:
            return await in_thread(
                self.put,
                key,
                stream,
                size=size,
                content_type=content_type,
                if_absent=if_absent,
                cache_control=cache_control,
                metadata=metadata,
                object_parameters=object_parameters,
            )
        attributes = self._attributes(content_type, cache_control, metadata, object_parameters)
        body = read_up_to(stream, self.multipart_threshold)
        mode: Literal["create", "overwrite"] = "create" if if_absent else "overwrite"
        with translate(f"writing {key!r}", map_error):
            result = await obstore.put_async(
                self.store, key, body, attributes=attributes, mode=mode, use_multipart=False
            )
        return written(key, len(body), result, attributes)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` on obstore's async client, streaming the body."""
        if end is not None and end <= start:
            info = await self.ahead(key)
            return AsyncDownload(info, _empty())
        options: dict[str, Any] = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        with translate(f"reading {key!r}", map_error):
            try:
                result = await obstore.get_async(self.store, key, options=options)  # type: ignore[arg-type]
            except obstore_errors.BaseError as exc:
                if not range_not_satisfiable(exc):
                    raise
                result = None
        if result is None:
            return AsyncDownload(await self.ahead(key), _empty())
        stream = result.stream(min_chunk_size=256 * 1024)

        async def chunks() -> Any:
            with translate(f"reading {key!r}", map_error):
                async for chunk in stream:
                    yield bytes(chunk)

        return AsyncDownload(object_info(result.meta, result.attributes), chunks())


async def _empty() -> Any:
    return
    yield b""  # pragma: no cover - makes this an async generator
