"""What a storage offers the helpers that work for it: files, URLs, the async file.

:mod:`stowage.storage` is built on those helpers, so they must not import it
back. Each takes a :class:`Binding` instead: the few members of a storage it
uses (the driver, the key of a name, the adapter's options and the one write
path). :class:`stowage.storage.Storage` satisfies it as it is. A separate
object would have to mirror what a storage changes after it is built (a
``base_url`` set later, settings followed) and its pickling without secrets;
a protocol gives the same narrow view with nothing to keep in step.
"""

from __future__ import annotations

from typing import Any, Protocol

from stowage.config import StorageOptions
from stowage.drivers.base import Driver, ObjectInfo, Readable

__all__ = ["Binding"]


class Binding(Protocol):
    """The members of a storage that its files and URLs use."""

    #: The adapter's options (buffer sizes, URL settings).
    options: StorageOptions

    @property
    def driver(self) -> Driver[Any]:
        """Return the storage's driver."""
        ...

    def key(self, name: Any, *, allow_empty: bool = False) -> str:
        """Return the driver key of ``name``, refusing an unsafe name."""
        ...

    def upload(self, name: str, stream: Readable, *, size: int | None = None) -> ObjectInfo:
        """Write ``stream`` to ``name``, replacing what is there."""
        ...

    async def aupload(self, name: str, stream: Readable, *, size: int | None = None) -> ObjectInfo:
        """Do :meth:`upload` without blocking the event loop."""
        ...
