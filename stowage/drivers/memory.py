"""Keep objects in this process's memory: for tests, caches and examples.

Objects live in a namespace shared by every storage configured with the same
``namespace`` option (by default each storage gets its own, kept when the
storage is pickled and unpickled in the same process). Thread-safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from stowage.config import option
from stowage.drivers.base import (
    Capability,
    Download,
    Driver,
    DriverOptions,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.exceptions import AlreadyExists, NotFound
from stowage.records import record

__all__ = ["MemoryDriver", "MemoryOptions"]

_CHUNK = 1 << 20


@record
class MemoryOptions(DriverOptions):
    """Options of the memory driver."""

    namespace: str = option(
        "",
        doc="Name of the shared in-process store; empty gives this storage its own.",
    )
    # Django's InMemoryStorage takes these and reports them back; memory holds
    # no permissions, so that is all they do here too.
    file_permissions_mode: int | None = option(
        None, doc="Reported by the storage's ``file_permissions_mode`` (as InMemoryStorage)."
    )
    directory_permissions_mode: int | None = option(
        None,
        doc="Reported by the storage's ``directory_permissions_mode`` (as InMemoryStorage).",
    )

    def __post_init__(self) -> None:
        if not self.namespace:
            object.__setattr__(self, "namespace", f"anonymous-{uuid.uuid4().hex}")


@dataclass
class _Entry:
    data: bytes
    info: ObjectInfo


_STORES: dict[str, dict[str, _Entry]] = {}
_LOCK = threading.Lock()


class MemoryDriver(Driver[MemoryOptions]):
    """Store objects in a dictionary guarded by a lock."""

    options_class = MemoryOptions
    waits_on_network = False
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SERVER_COPY,
            Capability.ACCESSED_TIME,
            Capability.CREATED_TIME,
        }
    )

    def __init__(self, options: MemoryOptions) -> None:
        super().__init__(options)
        with _LOCK:
            self._objects = _STORES.setdefault(options.namespace, {})

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
        """Read the whole stream, then store it under ``key`` in one step."""
        parts = []
        while chunk := stream.read(_CHUNK):
            parts.append(chunk)
        data = b"".join(parts)
        now = dt.datetime.now(dt.UTC)
        with _LOCK:
            old = self._objects.get(key)
            if if_absent and old is not None:
                raise AlreadyExists(f"{key!r} already exists.")
            info = ObjectInfo(
                key=key,
                size=len(data),
                modified=now,
                etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                content_type=content_type,
                cache_control=cache_control,
                created=old.info.created if old else now,
                accessed=now,
                metadata=dict(metadata or {}),
            )
            self._objects[key] = _Entry(data, info)
        return info

    def _entry(self, key: str) -> _Entry:
        with _LOCK:
            entry = self._objects.get(key)
        if entry is None:
            raise NotFound(f"{key!r} does not exist.")
        return entry

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Return a view of the stored bytes between ``start`` and ``end``."""
        entry = self._entry(key)
        view = memoryview(entry.data)[start:end]
        chunks = (bytes(view[i : i + _CHUNK]) for i in range(0, len(view), _CHUNK))
        return Download(entry.info, chunks)

    def head(self, key: str) -> ObjectInfo:
        """Describe the object at ``key``."""
        return self._entry(key).info

    def delete(self, key: str) -> None:
        """Forget ``key`` if present."""
        with _LOCK:
            self._objects.pop(key, None)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a snapshot of the keys under ``prefix``."""
        start = f"{prefix}/" if prefix else ""
        with _LOCK:
            entries = [e.info for k, e in self._objects.items() if k.startswith(start)]
        dirs: set[str] = set()
        for info in sorted(entries, key=lambda i: i.key):
            rest = info.key[len(start) :]
            if not recursive and "/" in rest:
                dirs.add(start + rest.split("/", 1)[0])
            else:
                yield info
        for key in sorted(dirs):
            yield Prefix(key)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy the stored bytes of ``src`` to ``dst``."""
        entry = self._entry(src)
        now = dt.datetime.now(dt.UTC)
        info = ObjectInfo(
            key=dst,
            size=entry.info.size,
            modified=now,
            etag=entry.info.etag,
            content_type=entry.info.content_type,
            created=now,
            accessed=now,
        )
        with _LOCK:
            self._objects[dst] = _Entry(entry.data, info)
        return info
