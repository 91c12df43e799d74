"""Raise one tree of exceptions for every backend.

The tree::

    StowageError                         base of everything stowage raises itself
    ├── ConfigurationError               also django ImproperlyConfigured
    │   └── MissingDependency            the extra for a driver is not installed
    ├── NotFound                         also FileNotFoundError
    ├── AlreadyExists                    also FileExistsError (atomic create lost)
    ├── UnsupportedOperation             also NotImplementedError
    └── ServiceError                     also OSError: the service failed us
        ├── AccessDenied                 also PermissionError (credentials, ACLs)
        ├── ServiceUnavailable           also ConnectionError (refused, reset, 5xx)
        ├── ServiceTimeout               also TimeoutError
        └── IncompleteRead               a body ended before its announced length

Each class also derives from the matching built-in, so code written against
Django's ``FileSystemStorage`` (``except FileNotFoundError``) keeps working.
Unsafe names are not in this tree: they raise Django's own
``SuspiciousFileOperation`` exactly as Django does.

Drivers translate their SDK's errors at the boundary with :func:`translate`,
which chains the original (``raise ... from exc``) so the cause is kept
while no SDK exception reaches the caller.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from types import TracebackType

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "ConfigurationError",
    "IncompleteRead",
    "MissingDependency",
    "NotFound",
    "ServiceError",
    "ServiceTimeout",
    "ServiceUnavailable",
    "StowageError",
    "UnsupportedOperation",
    "translate",
]


class StowageError(Exception):
    """Base class of every exception stowage raises itself."""


class ConfigurationError(StowageError, ImproperlyConfigured):
    """Report a storage configured wrongly (an unknown or invalid option)."""


class MissingDependency(ConfigurationError):
    """Report that the optional extra a driver needs is not installed."""


class NotFound(StowageError, FileNotFoundError):
    """Report a name that does not exist in the storage."""


class AlreadyExists(StowageError, FileExistsError):
    """Report that an atomic create found the name already taken."""


class UnsupportedOperation(StowageError, NotImplementedError):
    """Report an operation the configured backend declares it cannot do."""


class ServiceError(StowageError, OSError):
    """Report a failure of the storage service or of the way to it."""


class AccessDenied(ServiceError, PermissionError):
    """Report credentials or permissions the service refused."""


class ServiceUnavailable(ServiceError, ConnectionError):
    """Report a service that could not be reached or answered with a server error."""


class ServiceTimeout(ServiceError, TimeoutError):
    """Report a service that did not answer in time."""


class IncompleteRead(ServiceError):
    """Report a body that ended before the length the service announced."""


# Built-in OSError subclasses and the class each one becomes, most specific first.
_BUILTIN_MAP: tuple[tuple[type[BaseException], type[StowageError]], ...] = (
    (FileNotFoundError, NotFound),
    (IsADirectoryError, NotFound),
    (NotADirectoryError, NotFound),
    (FileExistsError, AlreadyExists),
    (PermissionError, AccessDenied),
    (TimeoutError, ServiceTimeout),
    (ConnectionError, ServiceUnavailable),
)

Mapper = Callable[[BaseException], StowageError | None]


def _from_builtin(exc: BaseException, what: str) -> StowageError | None:
    for source, target in _BUILTIN_MAP:
        if isinstance(exc, source):
            return target(f"{what}: {exc}")
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return ServiceError(f"{what}: no space left on the storage ({exc})")
        return ServiceError(f"{what}: {exc}")
    return None


#: Errors :func:`translate` lets through unchanged: already in the tree, an unsafe
#: name, or a programming error.
_PASSED_THROUGH = (
    StowageError,
    SuspiciousOperation,
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    AssertionError,
)


class _Translation:
    """The block of :func:`translate`: a plain class, as every driver call enters one."""

    __slots__ = ("mapper", "what")

    def __init__(self, what: str, mapper: Mapper | None) -> None:
        self.what = what
        self.mapper = mapper

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, _PASSED_THROUGH):
            return
        mapped = self.mapper(exc) if self.mapper is not None else None
        if mapped is None:
            mapped = _from_builtin(exc, self.what)
        if mapped is None:
            mapped = ServiceError(f"{self.what}: {type(exc).__name__}: {exc}")
        raise mapped from exc


def translate(what: str, mapper: Mapper | None = None) -> contextlib.AbstractContextManager[None]:
    """Turn any error raised inside the block into stowage's tree.

    ``what`` names the operation and the name for the message ("reading
    'a.txt'"); it must never contain a secret. ``mapper`` is the driver's own
    translation for its SDK's errors; it returns ``None`` for errors it does
    not know, which then fall back to the built-in mapping or to
    :class:`ServiceError`. Exceptions already in the tree, Django's
    ``SuspiciousFileOperation`` and programming errors (``TypeError``,
    ``ValueError``) pass through unchanged.
    """
    return _Translation(what, mapper)
