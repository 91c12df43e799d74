"""Translate obstore's errors to stowage's, and say which failures a retry may pass."""

from __future__ import annotations

import re

from obstore import exceptions as obstore_errors

from stowage.drivers.errors import ErrorTable, Rule
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
)

__all__ = ["map_error", "range_not_satisfiable", "retry_delete"]


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


def retry_delete(exc: BaseException) -> bool:
    """Tell whether a failed delete is worth sending again.

    obstore sends a delete as a bulk request (S3 DeleteObjects, an Azure
    batch): a POST, which it retries after a 5xx reply ("after N retries" in
    the first line of its message) but not when the connection failed
    before any reply.
    Deleting is idempotent, so that case is retried here, with backoff.
    """
    transient = isinstance(exc, (ServiceUnavailable, ServiceTimeout))
    return transient and not _RETRIED.search(str(exc))


def range_not_satisfiable(exc: BaseException) -> bool:
    """Tell whether a ranged read failed because it starts at or past the end."""
    text = str(exc)
    return "416" in text or "Wanted range starting at" in text
