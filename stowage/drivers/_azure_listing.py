"""Answer ``exists()`` on Azure with one List Blobs call (see :mod:`stowage.drivers.lookup`).

obstore lists a directory (its prefix always ends in ``/``), so it cannot
ask for the prefix ``name`` that finds the blob ``name`` and the directory
``name/`` in one request. :class:`BlobLister` sends that List Blobs call
itself, on a :class:`~stowage.drivers.http_pool.Pool` of kept-alive
connections that honours the driver's ``verify``, timeouts and the
environment's proxy.

A request carries the credential the driver holds: a container SAS signed
with the account key (made here, renewed well before it ends), the SAS
token it was given, or a bearer token from its ``token_credential``. Other
credentials (a service principal, a managed identity) live inside obstore;
a driver with those keeps to a HEAD and a listing.
"""

from __future__ import annotations

import datetime as dt
import http.client
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from stowage.drivers._azure_auth import SAS_TIME, SAS_VERSION, container_sas
from stowage.drivers.errors import ErrorTable, Refusal, Rule
from stowage.drivers.http_pool import Pool, UntrustedCertificate
from stowage.drivers.lookup import Page, exists_by_listing
from stowage.drivers.retry import RetryPolicy, transient
from stowage.exceptions import (
    AccessDenied,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)

__all__ = ["Authorize", "BlobLister", "bearer", "given_sas", "sas_from_account_key"]

#: Returns what authorizes one request: query fields (encoded, without "&" around) and headers.
Authorize = Callable[[], tuple[str, dict[str, str]]]

#: Error codes of a credential that is valid but may not list the container.
_FORBIDDEN = frozenset(
    {
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationFailure",
    }
)
#: How long a SAS made from the account key lasts, and how long before its end it is renewed.
_SAS_LIFETIME = dt.timedelta(hours=1)
_SAS_RENEWAL = 15 * 60.0


_ERRORS = ErrorTable(
    Rule(404, NotFound),
    Rule(401, AccessDenied),
    Rule(403, AccessDenied),
    Rule(range(500, 600), ServiceUnavailable),
    Rule(Refusal, ServiceError),
    # As the driver's other calls say it (obstore's and the delegation key's).
    Rule(UntrustedCertificate, ServiceUnavailable, "{what}: TLS certificate refused: {detail}"),
    Rule(TimeoutError, ServiceTimeout, "{what}: timed out"),
    Rule((OSError, http.client.HTTPException), ServiceUnavailable),
    status=Refusal.status_of,
)


def _passing(exc: BaseException) -> bool:
    # A refused certificate is said as the driver's other calls say it, but never passes.
    return transient(exc) and not isinstance(exc.__cause__, UntrustedCertificate)


def sas_from_account_key(
    account: str, container: str, account_key: str, clock: Callable[[], float] = time.time
) -> Authorize:
    """Return an :data:`Authorize` that lists ``container`` with a SAS signed by the key.

    One SAS (list permission on the container, an hour long) serves every
    request until a quarter of an hour before it ends.
    """
    lock = threading.Lock()
    held: list[tuple[str, float]] = []

    def authorize() -> tuple[str, dict[str, str]]:
        now = clock()
        with lock:
            if not held or now >= held[0][1]:
                until = dt.datetime.fromtimestamp(now, dt.UTC) + _SAS_LIFETIME
                query = container_sas(
                    account=account,
                    container=container,
                    account_key=account_key,
                    permission="l",
                    expiry=until.strftime(SAS_TIME),
                )
                held[:] = [(query, now + _SAS_LIFETIME.total_seconds() - _SAS_RENEWAL)]
            return held[0][0], {}

    return authorize


def given_sas(sas: str) -> Authorize:
    """Return an :data:`Authorize` that sends the SAS token the driver was given."""
    return lambda: (sas, {})


def bearer(token: Callable[[], Mapping[str, Any]]) -> Authorize:
    """Return an :data:`Authorize` sending the bearer token ``token()["token"]`` of the moment."""
    return lambda: ("", {"Authorization": f"Bearer {token()['token']}"})


class BlobLister:
    """List one container by name prefix, for ``exists()``."""

    #: Entries a page may hold (None: the service's own maximum, 5,000).
    page_size: int | None = None

    def __init__(
        self,
        endpoint: str,
        container: str,
        *,
        authorize: Authorize,
        verify: bool | str,
        connect_timeout: float,
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        parts = urlsplit(endpoint)
        self._path = f"{parts.path.rstrip('/')}/{quote(container, safe='')}"
        self._container = container
        self._authorize = authorize
        self._retry = retry
        self.pool = Pool(
            parts.scheme,
            parts.netloc,
            verify=verify,
            connect_timeout=connect_timeout,
            timeout=timeout,
            proxy=None,
        )

    @property
    def reachable(self) -> bool:
        """Tell whether the service can be reached: directly, or by an http:// proxy."""
        return self.pool.reachable

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` is a blob or a directory, listing the prefix ``key``."""
        what = f"checking whether {key!r} exists in container {self._container!r}"

        def fetch(marker: str | None) -> Page:
            return self._retry.run(lambda: self._page(key, marker, what), retryable=_passing)

        return exists_by_listing(key, fetch)

    @staticmethod
    def forbidden(exc: AccessDenied) -> bool:
        """Tell whether ``exc`` is the service refusing a valid credential the listing.

        Not a credential it rejects (``AuthenticationFailed``), which fails every
        other call alike.
        """
        cause = exc.__cause__
        return isinstance(cause, Refusal) and cause.code in _FORBIDDEN

    def close(self) -> None:
        """Close the idle connections; a later call opens new ones."""
        self.pool.close()

    def _page(self, prefix: str, marker: str | None, what: str) -> Page:
        with _ERRORS.translate(what):
            query, headers = self._authorize()
            fields = {"restype": "container", "comp": "list", "prefix": prefix, "delimiter": "/"}
            if marker:
                fields["marker"] = marker
            if self.page_size is not None:
                fields["maxresults"] = str(self.page_size)
            target = f"{self._path}?{urlencode(fields, quote_via=quote)}"
            if query:  # already encoded: a SAS as it was given
                target += f"&{query}"
            headers = {
                **headers,
                "Host": self.pool.host,
                "User-Agent": "django-stowage",
                "x-ms-version": SAS_VERSION,
            }
            response = self.pool.send("GET", target, headers)
            if response.status >= 300:
                code = response.headers.get("x-ms-error-code", "")
                raise Refusal.from_xml(response.status, response.body, code)
            return _read_page(response.body)


def _read_page(body: bytes) -> Page:
    """Read one ``EnumerationResults`` page: blob names, prefixes and the next marker."""
    root = ET.fromstring(body)
    blobs = root.find("Blobs")
    names: list[str] = []
    prefixes: list[str] = []
    if blobs is not None:
        names = [_name(blob) for blob in blobs.iter("Blob")]
        prefixes = [_name(prefix) for prefix in blobs.iter("BlobPrefix")]
    return names, prefixes, root.findtext("NextMarker") or None


def _name(entry: ET.Element) -> str:
    # A name holding characters XML cannot carry comes percent-encoded, so marked.
    element = entry.find("Name")
    if element is None:
        return ""
    text = element.text or ""
    return unquote(text) if element.get("Encoded") == "true" else text
