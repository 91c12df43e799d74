"""Define the driver contract: a few methods that move bytes for keys.

A driver knows nothing of Django. It receives *keys* that
:mod:`stowage.names` already cleaned and prefixed with ``location``, and it
translates its SDK's errors into :mod:`stowage.exceptions` at its boundary.
Everything else (names, overwrite policy, URLs, file objects) lives in the
adapter, :class:`stowage.storage.Storage`.

A driver declares what it can do in ``capabilities``; the adapter checks the
set and raises :class:`~stowage.exceptions.UnsupportedOperation` instead of
calling a method the driver does not have.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from stowage.exceptions import NotFound, UnsupportedOperation
from stowage.records import record

_T = TypeVar("_T")

__all__ = [
    "HIDDEN_PREFIX",
    "LOCK_NAME",
    "MAX_SIGNED_SECONDS",
    "TEMP_PREFIX",
    "UPLOADS_PREFIX",
    "URL_SAFE",
    "AsyncDownload",
    "Capability",
    "ChunkReader",
    "Download",
    "Driver",
    "DriverOptions",
    "MiB",
    "ObjectInfo",
    "Prefix",
    "Readable",
    "in_thread",
    "signed_seconds",
]


#: One mebibyte, the unit of part, chunk and threshold sizes.
MiB = 1024 * 1024

#: Names a driver keeps for itself start with this; listings never show them.
HIDDEN_PREFIX = ".stowage-"
#: Drivers that stage uploads beside their target give the staged file a name
#: starting with this; their listings never show such names.
TEMP_PREFIX = f"{HIDDEN_PREFIX}tmp-"
#: Where object stores stage large atomic creates, at the root of the bucket or container.
UPLOADS_PREFIX = f"{HIDDEN_PREFIX}uploads"
#: The resource a WebDAV create locks in the target's collection.
LOCK_NAME = f"{HIDDEN_PREFIX}lock"

#: Characters left unquoted in URL paths besides letters and digits: Django's
#: ``filepath_to_uri`` set, so URLs name files as Django's own storages do.
URL_SAFE = "/~!*()'"

#: The longest a signed URL may last where the service limits it (S3 SigV4, GCS V4).
MAX_SIGNED_SECONDS = 7 * 24 * 3600


def signed_seconds(expires: dt.timedelta | int, what: str = "A signed URL") -> int:
    """Return ``expires`` in whole seconds, refusing a lifetime the signing services refuse.

    Raises ``ValueError`` (each driver turns it into its own refusal) unless
    the lifetime is from 1 second to 7 days.
    """
    seconds = expires if isinstance(expires, int) else expires.days * 86400 + expires.seconds
    if not 1 <= seconds <= MAX_SIGNED_SECONDS:
        raise ValueError(
            f"{what} lasts from 1 second to 7 days ({MAX_SIGNED_SECONDS} s), not {seconds} s."
        )
    return seconds


class Readable(Protocol):
    """Anything with ``read(size)`` returning bytes: files, spools, uploads."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes, or all that is left when negative."""
        ...


class Capability(enum.Enum):
    """Name one thing a driver can do beyond the required methods."""

    #: ``put(if_absent=True)`` is atomic on the service (no check-then-write).
    ATOMIC_CREATE = "atomic_create"
    #: ``sign()`` returns a URL that grants temporary access.
    SIGN = "sign"
    #: ``sign(domain=...)`` signs URLs on a custom (CDN) domain.
    SIGN_CUSTOM_DOMAIN = "sign_custom_domain"
    #: ``public_url()`` returns a URL for a publicly readable object.
    PUBLIC_URL = "public_url"
    #: ``copy()`` copies on the service, without downloading.
    SERVER_COPY = "server_copy"
    #: ``local_path()`` returns a path on this machine's filesystem.
    LOCAL_PATH = "local_path"
    #: ``list()`` reports directories that hold no file (real directories).
    REAL_DIRECTORIES = "real_directories"
    #: ``ObjectInfo.accessed`` is filled in.
    ACCESSED_TIME = "accessed_time"
    #: ``ObjectInfo.created`` is filled in.
    CREATED_TIME = "created_time"
    #: ``put()`` takes ``object_parameters``: upload headers and metadata for that
    #: object alone, in the form of the driver's ``object_parameters`` option.
    OBJECT_PARAMETERS = "object_parameters"


@record(slots=True)
class ObjectInfo:
    """Describe one stored object, as ``head``, ``put`` and ``list`` see it."""

    key: str
    size: int
    modified: dt.datetime | None = None
    etag: str | None = None
    content_type: str | None = None
    cache_control: str | None = None
    created: dt.datetime | None = None
    accessed: dt.datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@record(slots=True)
class Prefix:
    """Describe a directory (a common prefix) met while listing."""

    key: str


class AsyncDownload:
    """Stream the bytes of one read asynchronously, with the object's info."""

    __slots__ = ("_chunks", "_closer", "info")

    def __init__(
        self,
        info: ObjectInfo,
        chunks: AsyncIterator[bytes],
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._closer = closer

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        """Release whatever the download holds open."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            await closer()


class Download:
    """Stream the bytes of one (possibly ranged) read, with the object's info.

    ``info.size`` is the size of the whole object, not of the range, so the
    reader can tell the end of the object from a body cut short. Iterating
    yields the body in chunks; ``close()`` releases the connection early.
    """

    __slots__ = ("_chunks", "_closer", "info")

    def __init__(
        self,
        info: ObjectInfo,
        chunks: Iterable[bytes],
        closer: Any = None,
    ) -> None:
        self.info = info
        self._chunks = iter(chunks)
        self._closer = closer

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Release whatever the download holds open."""
        if self._closer is not None:
            self._closer()
            self._closer = None


@record
class DriverOptions:
    """Base of every driver's options; a driver subclasses it with its own fields."""


Opts = TypeVar("Opts", bound=DriverOptions)


class Driver(Generic[Opts]):
    """Move bytes and metadata for keys on one service.

    ``Driver[SomeOptions]`` keeps its typed options in ``self.options``.
    Subclasses set ``options_class`` (the same class) and ``capabilities``
    and implement the methods below. ``capabilities`` may be narrowed per instance (a property)
    when it depends on the options. The adapter creates one driver per storage instance,
    lazily, and shares it between threads: a driver must be thread-safe.
    ``__init__`` validates the options and does no I/O: clients and connections
    are made on first use (system checks build drivers to validate settings).
    """

    #: The dataclass the adapter builds from ``OPTIONS`` for this driver.
    options_class: ClassVar[type[DriverOptions]] = DriverOptions
    #: What this driver can do beyond the required methods.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The longest key the service accepts, in UTF-8 bytes.
    max_key_bytes: ClassVar[int] = 1024
    #: The longest part between slashes, in UTF-8 bytes (file systems: 255).
    max_part_bytes: ClassVar[int | None] = None
    #: Django setting read for an option missing from OPTIONS, by option name
    #: (adapter or driver option): django-storages' names, for migration.
    setting_fallbacks: ClassVar[Mapping[str, str]] = {}
    #: Other names accepted for an option (django-storages spellings), alias -> option.
    option_aliases: ClassVar[Mapping[str, str]] = {}
    #: Options that, left at None, take a Django setting's value when the adapter
    #: makes the driver (option -> setting: a local directory defaults to
    #: MEDIA_ROOT). The adapter reads the settings, so a driver never imports Django.
    setting_defaults: ClassVar[Mapping[str, str]] = {}
    #: Adapter options (:class:`stowage.config.StorageOptions`) that this driver's
    #: options declare and take over, such as a filesystem's ``location`` (its root).
    #: Declaring an adapter option without claiming it is refused.
    claimed_options: ClassVar[frozenset[str]] = frozenset()
    #: Whether a call spends its time waiting on a service, so that callers gain by
    #: running several side by side (the static storages' upload threads). False for
    #: drivers whose calls keep this process busy (local disk, memory): threads
    #: would only take turns.
    waits_on_network: ClassVar[bool] = True

    def __init__(self, options: Opts) -> None:
        if not isinstance(options, self.options_class):
            raise TypeError(
                f"{type(self).__name__} takes {self.options_class.__name__}, "
                f"not {type(options).__name__}."
            )
        self.options: Opts = options

    # -- required -------------------------------------------------------------

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
    ) -> ObjectInfo:
        """Store the bytes read from ``stream`` under ``key`` and describe them.

        Reads ``stream`` in chunks from its current position, never all at
        once. With ``if_absent`` the write succeeds only when ``key`` is free
        and raises :class:`~stowage.exceptions.AlreadyExists` otherwise; a
        driver without ``ATOMIC_CREATE`` does its best (looks just before it
        commits) and the adapter checks the name first. A failed
        write leaves no partial object visible under ``key``. ``size`` is a
        hint (None when unknown). ``cache_control`` and ``metadata`` (user
        metadata, str to str) are stored where the service keeps them and
        ignored where it has no such thing (a filesystem).
        """
        raise NotImplementedError

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Read ``key`` from byte ``start`` up to, not including, ``end``.

        A ``start`` at or past the end of the object yields no bytes; a
        missing key raises :class:`~stowage.exceptions.NotFound`.
        """
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo:
        """Describe the object at ``key`` or raise ``NotFound``."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        raise NotImplementedError

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List what lies under the directory ``prefix`` ("" for the root).

        Without ``recursive`` yield the objects directly inside and a
        :class:`Prefix` for each subdirectory; with it, every object below.
        Keys are full keys. A missing directory lists nothing.
        """
        raise NotImplementedError

    # -- with defaults ----------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` is an object or a non-empty directory."""
        try:
            self.head(key)
        except NotFound:
            return self.is_dir(key)
        return True

    def list_names(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """Yield the key of each object and subdirectory directly inside ``prefix``.

        Each with whether it is a subdirectory: what ``listdir()`` needs, in
        :meth:`list`'s order. A driver whose listing can skip describing each
        object (sizes, times) overrides this to do so.
        """
        for entry in self.list(prefix):
            yield entry.key, isinstance(entry, Prefix)

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory (for object stores: has children)."""
        return any(True for _ in self.list(key, recursive=True))

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy ``src`` to ``dst`` (server-side with ``SERVER_COPY``)."""
        download = self.get(src)
        try:
            return self.put(dst, ChunkReader(download), size=download.info.size)
        finally:
            download.close()

    def put_adds_to(self, content_type: str) -> bool:
        """Tell whether a put of a ``content_type`` body stores more than it and that type.

        True where the options add to every upload (headers, compression, an
        ACL): a server-side copy of an object holding only the body and its
        Content-Type then differs from a put of the same body. False here.
        """
        return False

    def adopt(self, key: str, path: str, *, if_absent: bool = False) -> ObjectInfo | None:
        """Move the local file ``path`` to ``key`` if that is cheaper than a copy.

        Returns None, having done nothing, where it is not (the default): the
        adapter then streams the file with :meth:`put`. ``if_absent`` means
        what it means for ``put``.
        """
        return None

    # -- by capability ----------------------------------------------------------

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        """Return a URL granting ``method`` on ``key`` until ``expires`` from now.

        ``parameters`` are response-header overrides (``ResponseContentDisposition``
        …) or service query parameters. ``domain`` ("https://cdn.example.com")
        asks for a URL on a custom domain; only drivers declaring
        ``SIGN_CUSTOM_DOMAIN`` (in ``capabilities``, which may depend on the
        options) receive it.
        """
        raise UnsupportedOperation(f"{type(self).__name__} cannot sign URLs.")

    def signer(self, *, expires: dt.timedelta, domain: str | None = None) -> Callable[[str], str]:
        """Return a function of a key that signs GET on it as :meth:`sign` does.

        A storage that signs its URLs by default asks for it once and calls it
        per URL. A driver may return something faster than :meth:`sign` for
        this, the usual URL; it must give the same URL.
        """

        def sign(key: str) -> str:
            return self.sign(key, method="GET", expires=expires, parameters=None, domain=domain)

        return sign

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of ``key``."""
        raise UnsupportedOperation(f"{type(self).__name__} has no public URLs.")

    def domain_path(self, key: str) -> str:
        """Return the path of ``key`` under a custom domain that serves this store.

        The key itself by default (a CDN in front of an S3 or GCS bucket);
        Azure's domains keep the container in the path.
        """
        return key

    def local_path(self, key: str) -> str:
        """Return the filesystem path of ``key`` on this machine."""
        raise UnsupportedOperation(f"{type(self).__name__} has no local paths.")

    def close(self) -> None:
        """Release connections and clients; the driver may be used again after."""

    # -- async twins ------------------------------------------------------------
    #
    # The defaults run the sync method on a worker thread. A driver whose
    # client is natively async overrides them and sets ``native_async``.

    #: True when the async methods use the client's own async API.
    native_async: ClassVar[bool] = False

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
    ) -> ObjectInfo:
        """Do :meth:`put` without blocking the event loop."""
        return await in_thread(
            self.put,
            key,
            stream,
            size=size,
            content_type=content_type,
            if_absent=if_absent,
            cache_control=cache_control,
            metadata=metadata,
        )

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` without blocking the event loop."""
        download = await in_thread(self.get, key, start=start, end=end)
        chunks = iter(download)

        async def pull() -> AsyncIterator[bytes]:
            while (chunk := await in_thread(next, chunks, None)) is not None:
                yield chunk

        async def close() -> None:
            await in_thread(download.close)

        return AsyncDownload(download.info, pull(), close)

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` without blocking the event loop."""
        return await in_thread(self.head, key)

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        return await in_thread(self.exists, key)

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` without blocking the event loop."""
        await in_thread(self.delete, key)

    async def alist(self, prefix: str, *, recursive: bool = False) -> Sequence[ObjectInfo | Prefix]:
        """Do :meth:`list` without blocking the event loop (the whole listing)."""
        return await in_thread(lambda: list(self.list(prefix, recursive=recursive)))


async def in_thread(func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Run a blocking ``func`` on a worker thread through asgiref and await its result.

    Not thread-sensitive: driver calls need no particular thread, and calls
    from one event loop then run side by side instead of one after another.
    """
    # Imported here: asgiref pulls in asyncio, which sync-only processes never need.
    from asgiref.sync import sync_to_async

    return await sync_to_async(functools.partial(func, *args, **kwargs), thread_sensitive=False)()


class ChunkReader:
    """Offer ``read()`` over an iterable of byte chunks, copying as little as it can."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes (all that is left when negative)."""
        if size < 0:
            data = self._pending + b"".join(self._chunks)
            self._pending = b""
            return data
        while len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            # A chunk that alone satisfies the read is passed on without copying.
            self._pending = self._pending + chunk if self._pending else chunk
        if len(self._pending) <= size:
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data
