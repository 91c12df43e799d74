"""Name the likely cause of a storage failure and what to do about it.

Errors arrive as stowage's exceptions (chained to the service SDK's own), as
Django's, or as plain ``OSError``. The class tells most of the story; where
it does not (a 403 may be a wrong key or a skewed clock), the messages of the
whole chain are searched for the service's error codes. Only the chain is
read, never printed: an SDK's debug dump may hold request details.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured

from stowage.exceptions import NotFound, ServiceTimeout
from stowage.records import record

__all__ = ["Diagnosis", "describe", "diagnose"]


@record(slots=True)
class Diagnosis:
    """A failure's likely cause: a short ``kind`` and advice for a person."""

    kind: str
    advice: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.advice}"


CLOCK_SKEW = Diagnosis(
    "clock skew",
    "the service refused the request's timestamp; set this machine's clock (NTP)",
)
MISSING_BUCKET = Diagnosis(
    "bucket or container missing",
    "create it, or fix bucket_name (azure_container, the location directory)",
)
READ_ONLY = Diagnosis(
    "read-only",
    "the storage refuses writes (read-only file system or storage class)",
)
CREDENTIALS = Diagnosis(
    "bad credentials or permission denied",
    "check the access key and secret, their permissions on the bucket, "
    "or the file permissions of the directory",
)
DNS = Diagnosis(
    "host not found (DNS)",
    "the endpoint's host name does not resolve; check endpoint_url or the account name",
)
REFUSED = Diagnosis(
    "connection refused",
    "nothing listens at the endpoint; check endpoint_url, its port and that the service runs",
)
TIMEOUT = Diagnosis(
    "timed out",
    "the service did not answer in time; check the network, firewalls and proxies",
)
UNAVAILABLE = Diagnosis(
    "service unavailable",
    "the service could not be reached or answered with a server error; try again later",
)
CONDITIONAL_WRITES = Diagnosis(
    "conditional writes ignored",
    "the S3 server ignores If-None-Match: *, which conditional_writes='require' needs; "
    "use a server that honours it, or set conditional_writes='auto' (best effort)",
)
UNKNOWN = Diagnosis("unexpected error", "see the message above")

# Markers searched in the messages of the whole chain, most specific first.
_MARKERS: tuple[tuple[Diagnosis, tuple[str, ...]], ...] = (
    (CLOCK_SKEW, ("RequestTimeTooSkewed", "clock skew", "time skew", "RequestExpired")),
    (
        MISSING_BUCKET,
        ("NoSuchBucket", "ContainerNotFound", "bucket does not exist", "NoSuchContainer"),
    ),
    (READ_ONLY, ("Read-only file system", "read-only")),
    (
        CREDENTIALS,
        (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AuthenticationFailed",
            "AuthorizationFailure",
            "AuthorizationPermissionMismatch",
            "InvalidClientTokenId",
            "ExpiredToken",
            "AccessDenied",
            "403 Forbidden",
            "401 Unauthorized",
        ),
    ),
    (
        DNS,
        (
            "dns error",
            "Name or service not known",
            "failed to lookup address",
            "nodename nor servname",
            "Temporary failure in name resolution",
            "getaddrinfo failed",
        ),
    ),
    (REFUSED, ("Connection refused", "ConnectionRefused", "ECONNREFUSED")),
    (CONDITIONAL_WRITES, ("ignores If-None-Match",)),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def diagnose(exc: BaseException, *, writing: bool = False) -> Diagnosis:
    """Return the likely cause of ``exc``; ``writing`` when a write raised it."""
    chain = list(_chain(exc))
    text = "\n".join(str(link) for link in chain)
    for diagnosis, markers in _MARKERS:
        if any(marker in text for marker in markers):
            return diagnosis
    if any(isinstance(link, OSError) and link.errno == errno.EROFS for link in chain):
        return READ_ONLY
    if isinstance(exc, ImproperlyConfigured):
        return Diagnosis("configuration", str(exc))
    if writing and isinstance(exc, NotImplementedError):
        return READ_ONLY
    if writing and isinstance(exc, NotFound):
        # A write creates its name: only a missing bucket or container is not found.
        return MISSING_BUCKET
    for kind, diagnosis in (
        (PermissionError, CREDENTIALS),
        (ConnectionRefusedError, REFUSED),
        ((ServiceTimeout, TimeoutError), TIMEOUT),
        (ConnectionError, UNAVAILABLE),
    ):
        if isinstance(exc, kind):
            return diagnosis
    return UNKNOWN


def describe(exc: BaseException) -> str:
    """Return ``exc`` in one line: its class and the first line of its message."""
    message = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
