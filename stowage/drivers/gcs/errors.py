"""Say what the JSON API's errors become, and which of them are worth a retry.

One table per kind of operation: a 412 means "the name is taken" to a
create and "the object changed" to a read pinned to a generation; a 404
means "no such object" to an operation on an object and "no such bucket"
to one on the bucket. The service's transient answers (408, 429, 5xx) and
broken connections become :class:`~stowage.exceptions.ServiceTimeout` or
:class:`~stowage.exceptions.ServiceUnavailable`, which the drivers' retry
policy takes as transient, whether the request went on stowage's pool or
through google-auth's session (``requests``, matched only once loaded).

The tables load at the first error, with google-auth's exceptions:
declaring a storage must not import it.
"""

from __future__ import annotations

import functools
import http.client
import socket
import sys
from collections.abc import Callable

from stowage.drivers.errors import ErrorTable, Rule
from stowage.drivers.gcs.json_api import ApiError
from stowage.drivers.http_pool import UntrustedCertificate
from stowage.drivers.retry import transient
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    Mapper,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)

__all__ = ["mapper", "transient_failure"]


def mapper(what: str, *, bucket: str, creating: bool = False, reading: bool = True) -> Mapper:
    """Return the translation of the client's errors for one operation on ``bucket``."""
    return lambda exc: _table(creating=creating, reading=reading).lookup(exc, what, bucket=bucket)


def transient_failure(exc: BaseException) -> bool:
    """Tell whether an untranslated error of the client is one a retry may get past."""
    return transient(_table(creating=False, reading=True).lookup(exc, "") or exc)


def _status(exc: BaseException) -> int | None:
    """Return the HTTP status of an error answer (:class:`~.json_api.ApiError`)."""
    return exc.code if isinstance(exc, ApiError) else None


def _from_requests(*names: str) -> Callable[[BaseException], bool]:
    """Match the errors of ``requests`` or ``urllib3`` named ``module.Class``, once loaded.

    Only google-auth's session (behind a proxy the pool cannot speak, or
    with mutual TLS) raises them, and it loads them itself.
    """

    def matches(exc: BaseException) -> bool:
        for name in names:
            module_name, _, class_name = name.rpartition(".")
            module = sys.modules.get(module_name)
            kind = getattr(module, class_name, None) if module is not None else None
            if isinstance(kind, type) and isinstance(exc, kind):
                return True
        return False

    return matches


@functools.cache
def _table(*, creating: bool, reading: bool) -> ErrorTable:
    """Return what the JSON API's errors become (loaded at the first error)."""
    import google.auth.exceptions

    table = ErrorTable(
        Rule(401, AccessDenied, "{what}: {exc.code} {exc.message}"),
        Rule(403, AccessDenied, "{what}: {exc.code} {exc.message}"),
        Rule(408, ServiceTimeout, "{what}: {status} {name}"),
        Rule(429, ServiceUnavailable, "{what}: {status} {name}"),
        Rule(range(500, 600), ServiceUnavailable, "{what}: {status} {name}"),
        Rule(TimeoutError, ServiceTimeout),
        Rule(
            _from_requests("requests.exceptions.Timeout", "urllib3.exceptions.TimeoutError"),
            ServiceTimeout,
        ),
        # A connection refused, reset or cut mid-body, or a name that does not
        # resolve, as http.client or (through google-auth's session) requests
        # and urllib3 report it.
        Rule(
            (http.client.HTTPException, ConnectionError, socket.gaierror),
            ServiceUnavailable,
        ),
        Rule(
            _from_requests(
                "requests.exceptions.ConnectionError",
                "requests.exceptions.ChunkedEncodingError",
                "urllib3.exceptions.ProtocolError",
            ),
            ServiceUnavailable,
        ),
        Rule(UntrustedCertificate, ServiceError, "{what}: TLS certificate refused: {detail}"),
        Rule(
            google.auth.exceptions.RefreshError,
            AccessDenied,
            "{what}: the credentials could not be refreshed: {detail}",
        ),
        Rule(google.auth.exceptions.TransportError, ServiceUnavailable),
        Rule(google.auth.exceptions.DefaultCredentialsError, ConfigurationError),
        Rule(ApiError, ServiceError, "{what}: {exc.code} {exc.message}"),
        status=_status,
    )
    return table.extend(
        Rule(412, AlreadyExists, "{what}: the name is already taken.")
        if creating
        else Rule(412, ServiceError, "{what}: the object changed while it was being read."),
        Rule(404, NotFound, "{what}: no such object.")
        if reading
        else Rule(404, ServiceError, "{what}: bucket {bucket!r} not found."),
    )
