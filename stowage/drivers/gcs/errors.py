"""Say what the Google client's errors become, and which of them are worth a retry.

One table per kind of operation: a 412 means "the name is taken" to a
create and "the object changed" to a read pinned to a generation; a 404
means "no such object" to an operation on an object and "no such bucket"
to one on the bucket. The service's transient answers (408, 429, 5xx) and
broken connections become :class:`~stowage.exceptions.ServiceTimeout` or
:class:`~stowage.exceptions.ServiceUnavailable`, which the drivers' retry
policy takes as transient, whether the error comes from the client's JSON
calls (an API exception carrying the status) or its media transfers (an
``InvalidResponse`` carrying the response).

The tables load at the first error, with the client library: declaring a
storage must not import it.
"""

from __future__ import annotations

import functools

from stowage.drivers.errors import ErrorTable, Rule
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
    """Return the HTTP status an API exception or a media transfer's failure carries."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


@functools.cache
def _table(*, creating: bool, reading: bool) -> ErrorTable:
    """Return what the client's errors become (loaded at the first error: the SDK is optional)."""
    import http.client
    import socket

    import google.auth.exceptions
    import requests
    import urllib3
    from google.api_core import exceptions as api_exceptions
    from google.cloud.storage import exceptions as storage_exceptions  # type: ignore[import-untyped]

    table = ErrorTable(
        Rule(
            (api_exceptions.Forbidden, api_exceptions.Unauthorized),
            AccessDenied,
            "{what}: {exc.code} {exc.message}",
        ),
        Rule(408, ServiceTimeout, "{what}: {status} {name}"),
        Rule(429, ServiceUnavailable, "{what}: {status} {name}"),
        Rule(range(500, 600), ServiceUnavailable, "{what}: {status} {name}"),
        Rule(api_exceptions.GoogleAPICallError, ServiceError, "{what}: {exc.code} {exc.message}"),
        Rule(
            (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError),
            ServiceTimeout,
        ),
        # A connection refused, reset or cut mid-body, or a name that does not
        # resolve, as requests, urllib3 or http.client report it (media
        # transfers read the raw response; stowage's own reads use http.client).
        Rule(
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.ProtocolError,
                http.client.HTTPException,
                ConnectionError,
                socket.gaierror,
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
        Rule(
            storage_exceptions.DataCorruption,
            ServiceError,
            "{what}: the checksum of the transferred data did not match.",
        ),
        Rule(
            storage_exceptions.InvalidResponse,
            ServiceError,
            "{what}: unexpected response from the service.",
        ),
        status=_status,
    )
    return table.extend(
        Rule(api_exceptions.PreconditionFailed, AlreadyExists, "{what}: the name is already taken.")
        if creating
        else Rule(
            api_exceptions.PreconditionFailed,
            ServiceError,
            "{what}: the object changed while it was being read.",
        ),
        Rule(api_exceptions.NotFound, NotFound, "{what}: no such object.")
        if reading
        else Rule(api_exceptions.NotFound, ServiceError, "{what}: bucket {bucket!r} not found."),
    )
