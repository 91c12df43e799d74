"""Translate WebDAV answers and httpx's failures into stowage's exceptions, by one table."""

from __future__ import annotations

import httpx

from stowage.drivers.errors import ErrorTable, Rule
from stowage.exceptions import (
    AccessDenied,
    IncompleteRead,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
)

__all__ = ["ERRORS", "READ_ERRORS", "expect", "status_error"]


def _status(exc: BaseException) -> int | None:
    return exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None


#: What each answer and each failure of httpx becomes; ``root`` is the server's URL.
ERRORS = ErrorTable(
    Rule(
        401,
        AccessDenied,
        "{what}: the server refused the credentials ({detail}); "
        "check the 'username', 'password' and 'auth' options.",
    ),
    Rule(403, AccessDenied, "{what}: the server forbids it ({detail})."),
    Rule(404, NotFound, "{what}: not found ({detail})."),
    Rule(410, NotFound, "{what}: not found ({detail})."),
    Rule(range(300, 400), NotFound, "{what}: not a file ({detail}, a collection or a redirect)."),
    Rule(507, ServiceError, "{what}: the server has no space left ({detail})."),
    Rule(423, ServiceError, "{what}: the resource is locked ({detail})."),
    Rule(range(500, 1000), ServiceUnavailable, "{what}: the server failed ({detail})."),
    Rule(httpx.HTTPStatusError, ServiceError, "{what}: the server answered {detail}."),
    Rule(httpx.TimeoutException, ServiceTimeout, "{what}: {root} did not answer in time ({name})."),
    Rule(httpx.ConnectError, ServiceUnavailable, "{what}: cannot connect to {root}: {detail}"),
    Rule(
        httpx.StreamError,
        ServiceError,
        "{what}: the server asked to authenticate again during an upload ({detail}).",
    ),
    Rule(
        httpx.TransportError,
        ServiceUnavailable,
        "{what}: the connection to {root} failed: {detail}",
    ),
    status=_status,
)
#: The same while a body streams: a connection closed early is a short body.
READ_ERRORS = ERRORS.extend(
    Rule(
        httpx.RemoteProtocolError,
        IncompleteRead,
        "{what}: the body ended before its announced length ({detail}).",
    )
)


def status_error(response: httpx.Response, what: str) -> StowageError:
    """Translate an unexpected status into stowage's tree, chained to an httpx error."""
    label = f"{response.status_code} {response.reason_phrase}".strip()
    error = httpx.HTTPStatusError(label, request=response.request, response=response)
    return ERRORS.convert(error, what)


def expect(response: httpx.Response, what: str, *ok: int) -> httpx.Response:
    """Return ``response`` if its status is one of ``ok`` (by default 200, 201, 204), else raise."""
    if response.status_code in (ok or (200, 201, 204)):
        return response
    raise status_error(response, what)
