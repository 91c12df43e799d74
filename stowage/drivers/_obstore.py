"""Share what every obstore-based driver does the same way (S3, Azure).

A subclass builds its obstore store (``_make_store``), sets the attributes
every object gets (``_base_attributes``) and says how a large atomic create
lands (``_finish_create``); everything else is here: streaming single and
multipart uploads, ranged streaming reads, delimiter listings, server-side
copies, error translation and the async twins on obstore's ``*_async``.

Large atomic creates stream to a temporary key under ``.stowage-uploads/``
(obstore offers no conditional multipart completion) and are then copied
into place with a conditional server-side copy. Listings never show that
prefix; a lifecycle rule on it cleans up after crashed processes.

A service that ignores conditional writes (``_creates_atomically`` says so)
gets a best-effort create instead, whatever the size: the body is staged
under that same prefix, the target is checked once more just before the
commit, and the commit is an unconditional server-side copy followed by the
deletion of the staged object. Two writers can still pass that last check
together in the one round trip before the copy; the last copy then wins.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import obstore
from obstore import exceptions as obstore_errors

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
from stowage.drivers.errors import ErrorTable, Rule
from stowage.drivers.options import ObjectStoreOptions
from stowage.drivers.retry import DEFAULT_POLICY
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
    translate,
)

__all__ = [
    "HEADER_ATTRIBUTES",
    "UPLOADS_PREFIX",
    "ObstoreDriver",
    "map_error",
    "read_ca_bundle",
    "retry_config",
]

#: Attributes obstore maps to HTTP headers; any other attribute is user metadata.
HEADER_ATTRIBUTES = frozenset(
    {
        "Cache-Control",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Type",
        "Storage-Class",
    }
)


def read_ca_bundle(verify: bool | str) -> str | None:
    """Return the PEM text of the CA bundle option ``verify`` names, or None for True/False."""
    if not isinstance(verify, str):
        return None
    try:
        with open(verify, encoding="ascii") as bundle:
            text = bundle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"Option 'verify': cannot read the CA bundle {verify!r}: {exc}"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigurationError(f"Option 'verify': {verify!r} holds no PEM certificate.")
    return text


def _first_line(exc: BaseException) -> str:
    # obstore's messages carry the whole request debug dump: keep its first line.
    return str(exc).split("\n", 1)[0][:300]


#: The HTTP status in obstore's message ("... status code: 503 Service Unavailable",
#: "HTTP status server error (503 ...)"): its exceptions carry no status attribute.
_STATUS = re.compile(
    r"status code: (?P<code>\d{3})\b"
    r"|status (?:client|server) error \((?P<http>\d{3})\b"
    r"|\b(?P<forbidden>403) Forbidden\b"
)


def _status(exc: BaseException) -> int | None:
    found = _STATUS.search(str(exc))
    return None if found is None else int(next(code for code in found.groups() if code))


def _timed_out(exc: BaseException) -> bool:
    text = str(exc)
    return "operation timed out" in text or "TimedOut" in text


def _connection_failed(exc: BaseException) -> bool:
    # Failures before any answer: no status, no class of their own.
    text = str(exc)
    return any(
        marker in text
        for marker in (
            "Connection refused",
            "error sending request",
            "connection closed",
            "body error",
        )
    )


#: What obstore's errors become; the message is the first line of obstore's.
_ERRORS = ErrorTable(
    Rule((FileNotFoundError, obstore_errors.NotFoundError), NotFound, "{detail}"),
    Rule(
        (FileExistsError, obstore_errors.AlreadyExistsError, obstore_errors.PreconditionError),
        AlreadyExists,
        "{detail}",
    ),
    Rule(
        (
            PermissionError,
            obstore_errors.PermissionDeniedError,
            obstore_errors.UnauthenticatedError,
        ),
        AccessDenied,
        "{detail}",
    ),
    Rule(403, AccessDenied, "{detail}"),
    Rule(_timed_out, ServiceTimeout, "{detail}"),
    Rule(_connection_failed, ServiceUnavailable, "{detail}"),
    Rule(range(500, 600), ServiceUnavailable, "{detail}"),
    Rule(obstore_errors.BaseError, ServiceError, "{detail}"),
    status=_status,
    detail=_first_line,
)


def map_error(exc: BaseException) -> StowageError | None:
    """Translate an obstore error into stowage's tree (None: not one of obstore's)."""
    return _ERRORS.lookup(exc, "")


_RETRIED = re.compile(r"after \d+ retries")


def _retry_delete(exc: BaseException) -> bool:
    """Tell whether a failed delete is worth sending again.

    obstore sends a delete as a bulk request (S3 DeleteObjects, an Azure
    batch): a POST, which it retries after a 5xx reply ("after N retries" in
    the first line of its message) but not when the connection failed
    before any reply.
    Deleting is idempotent, so that case is retried here, with backoff.
    """
    transient = isinstance(exc, (ServiceUnavailable, ServiceTimeout))
    return transient and not _RETRIED.search(str(exc))


def retry_config(max_retries: int, timeout: float) -> dict[str, Any]:
    """Return obstore's retry settings: the drivers' one backoff, ``max_retries`` times.

    The whole of a request's retries may take as long as its tries could.
    """
    return {
        "max_retries": max_retries,
        "retry_timeout": dt.timedelta(seconds=max(timeout, 1) * (max_retries + 1)),
        "backoff": {
            "init_backoff": dt.timedelta(seconds=DEFAULT_POLICY.base),
            "max_backoff": dt.timedelta(seconds=DEFAULT_POLICY.cap),
            "base": 2,
        },
    }


def _range_not_satisfiable(exc: BaseException) -> bool:
    text = str(exc)
    return "416" in text or "Wanted range starting at" in text


def _info(meta: Mapping[str, Any], attributes: Mapping[str, Any] | None = None) -> ObjectInfo:
    attributes = attributes or {}
    metadata = {
        k: str(v)
        for k, v in attributes.items()
        if k not in HEADER_ATTRIBUTES and k != "Content-Type"
    }
    etag = meta.get("e_tag")
    return ObjectInfo(
        key=str(meta["path"]),
        size=int(meta["size"]),
        modified=meta.get("last_modified"),
        etag=etag.strip('"') if isinstance(etag, str) else None,
        content_type=attributes.get("Content-Type"),
        cache_control=attributes.get("Cache-Control"),
        metadata=metadata,
    )


def _written(key: str, size: int, result: Any, attributes: Mapping[str, str]) -> ObjectInfo:
    """Describe an object just written in one PUT, sync or async alike."""
    return ObjectInfo(
        key=key,
        size=size,
        etag=_etag(result),
        content_type=attributes.get("Content-Type"),
        modified=dt.datetime.now(dt.UTC),
    )


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
        #: Retries of a delete that got no reply (see :func:`_retry_delete`).
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
                body = _read_up_to(stream, self.multipart_threshold)
                mode: Literal["create", "overwrite"] = "create" if if_absent else "overwrite"
                result = obstore.put(
                    self.store, key, body, attributes=attributes, mode=mode, use_multipart=False
                )
                return _written(key, len(body), result, attributes)
            target = f"{UPLOADS_PREFIX}/{secrets.token_hex(16)}" if if_absent else key
            self._put_parts(target, stream, size, attributes)
            if if_absent:
                try:
                    self._finish_create(target, key)
                finally:
                    obstore.delete(self.store, target)
            return self.head(key)

    def _put_parts(
        self, target: str, stream: Readable, size: int | None, attributes: dict[str, str]
    ) -> None:
        source = _Source(stream)
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
                    body = _read_up_to(stream, self.multipart_threshold)
                    obstore.put(
                        self.store, staged, body, attributes=attributes, use_multipart=False
                    )
                    stored = len(body)
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
                if not _range_not_satisfiable(exc):
                    raise
                # Past the end (or an empty object): nothing to read.
                return Download(self.head(key), [])
        info = _info(result.meta, result.attributes)
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
        return _info(result.meta, result.attributes)

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error (Azure says 404, S3 does not)."""

        def once() -> None:
            with contextlib.suppress(NotFound), translate(f"deleting {key!r}", map_error):
                obstore.delete(self.store, key)

        self._retry.run(once, retryable=_retry_delete)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List with a delimiter (one level) or flat (recursive), every page."""
        with translate(f"listing {prefix!r}", map_error):
            if recursive:
                for page in obstore.list(self.store, prefix or None, chunk_size=1000):
                    for meta in page:
                        if not meta["path"].startswith(UPLOADS_PREFIX + "/"):
                            yield _info(meta)
                return
            result = obstore.list_with_delimiter(self.store, prefix or None)
        for common in result["common_prefixes"]:
            if common.rstrip("/") != UPLOADS_PREFIX:
                yield Prefix(common.rstrip("/"))
        for meta in result["objects"]:
            yield _info(meta)

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
        return _info(result.meta, result.attributes)

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

        await self._retry.arun(once, retryable=_retry_delete)

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
        body = _read_up_to(stream, self.multipart_threshold)
        mode: Literal["create", "overwrite"] = "create" if if_absent else "overwrite"
        with translate(f"writing {key!r}", map_error):
            result = await obstore.put_async(
                self.store, key, body, attributes=attributes, mode=mode, use_multipart=False
            )
        return _written(key, len(body), result, attributes)

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
                if not _range_not_satisfiable(exc):
                    raise
                result = None
        if result is None:
            return AsyncDownload(await self.ahead(key), _empty())
        stream = result.stream(min_chunk_size=256 * 1024)

        async def chunks() -> Any:
            with translate(f"reading {key!r}", map_error):
                async for chunk in stream:
                    yield bytes(chunk)

        return AsyncDownload(_info(result.meta, result.attributes), chunks())


class _Source:
    """Iterate a reader's chunks for obstore, keeping the error the reader raised."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._stream.read(MiB):
                yield chunk
        except Exception as exc:
            self.error = exc
            raise


async def _empty() -> Any:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _read_up_to(stream: Readable, limit: int) -> bytes:
    parts = []
    total = 0
    while total <= limit and (chunk := stream.read(min(MiB, limit + 1 - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _etag(result: Mapping[str, Any]) -> str | None:
    etag = result.get("e_tag")
    return etag.strip('"') if isinstance(etag, str) else None
