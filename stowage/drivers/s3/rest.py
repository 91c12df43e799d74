"""Send the S3 calls obstore does not offer, signed, with the standard library's HTTP.

Multipart uploads under a key and id of stowage's choosing (large creates,
direct uploads from browsers), delimited listings and bucket settings
(CORS) are plain S3 REST calls. :class:`RestClient` signs each in its
``Authorization`` header (:func:`~stowage.drivers._sigv4.sign_headers`, the
driver's current keys) and sends it on a kept-alive connection of a
:class:`~stowage.drivers.http_pool.Pool`, which honours the driver's
``verify``, timeouts and proxy, and says when it cannot reach the service
(an ``https://`` or SOCKS proxy): the driver then keeps to obstore.

Failures become stowage's errors, named after S3's error code. A call is
retried on the driver's :class:`~stowage.drivers.retry.RetryPolicy` when its
``retryable`` predicate accepts the failure (transient ones by default).
"""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping

from stowage.drivers import _sigv4
from stowage.drivers.errors import ErrorTable, Refusal, Rule
from stowage.drivers.exchange import Body, Headers
from stowage.drivers.http_pool import Pool, UntrustedCertificate
from stowage.drivers.retry import RetryPolicy, transient
from stowage.drivers.s3.address import Address
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    UnsupportedOperation,
)
from stowage.records import record

__all__ = ["NAMESPACE", "Answer", "Body", "RestClient", "answered", "find_all", "find_text"]

#: The XML namespace of S3's documents.
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


def find_text(element: ET.Element, name: str) -> str:
    """Return the text of ``element``'s child ``name`` (in any namespace, or none), or ""."""
    found = element.find(_in_namespace_of(element, name))
    return (found.text or "") if found is not None else ""


def find_all(element: ET.Element, name: str) -> list[ET.Element]:
    """Return ``element``'s children named ``name`` (in any namespace, or none).

    S3 answers in its namespace; some compatible servers use another, or none.
    """
    return element.findall(_in_namespace_of(element, name))


def _in_namespace_of(element: ET.Element, name: str) -> str:
    """Return ``name`` in ``element``'s namespace, which its children share.

    Every S3 answer declares one default namespace (S3's, another, or none)
    that all its elements inherit. A plain name is found by ElementTree's C
    code; a wildcard one goes through its Python path language, several
    times slower.
    """
    tag = element.tag
    return f"{tag[: tag.index('}') + 1]}{name}" if tag[:1] == "{" else name


@record
class Answer:
    """One successful response: its status, headers and body."""

    status: int
    headers: Headers
    body: bytes


def _late_error(body: bytes) -> bool:
    """Tell whether a 2xx body is S3's ``<Error>`` document."""
    head = body[:256].lstrip()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2 :].lstrip()
    return head.startswith(b"<Error>")


def _code(*codes: str) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, Refusal) and exc.code in codes


def _detail(exc: BaseException) -> str:
    return str(exc)[:300] or type(exc).__name__


_TAKEN = "{what}: the name is taken ({detail})"

#: What each failure becomes; ``{detail}`` is S3's code and message, or the error's text.
_ERRORS = ErrorTable(
    # 412: If-None-Match lost; 409: another conditional write to the key was in progress.
    Rule(412, AlreadyExists, _TAKEN),
    Rule(_code("ConditionalRequestConflict"), AlreadyExists, _TAKEN),
    Rule(404, NotFound),
    Rule(401, AccessDenied),
    Rule(403, AccessDenied),
    Rule(_code("RequestTimeout"), ServiceTimeout),
    Rule(range(500, 600), ServiceUnavailable),
    Rule(Refusal, ServiceError),
    Rule(UntrustedCertificate, ServiceError, "{what}: TLS certificate refused: {detail}"),
    Rule(TimeoutError, ServiceTimeout, "{what}: timed out"),
    Rule((OSError, http.client.HTTPException), ServiceUnavailable),
    status=Refusal.status_of,
    detail=_detail,
)


def refusal_status(exc: BaseException) -> int | None:
    """Return the HTTP status of the service's own refusal behind ``exc`` (None: no answer)."""
    return Refusal.status_of(exc.__cause__) if exc.__cause__ is not None else None


def answered(exc: BaseException) -> bool:
    """Tell whether a failure is the service's own 5xx answer, not a lost connection.

    A request that changes state is sent again only then: after a lost
    connection it may have taken effect.
    """
    return isinstance(exc, ServiceUnavailable) and isinstance(exc.__cause__, Refusal)


class RestClient:
    """Send signed S3 REST calls for one bucket, on a pool of kept-alive connections."""

    def __init__(
        self,
        address: Address,
        *,
        region: str,
        keys: Callable[[], tuple[str, str, str | None]],
        verify: bool | str,
        connect_timeout: float,
        timeout: float,
        proxy: str | None,
        retry: RetryPolicy,
    ) -> None:
        self.address = address
        self._region = region
        self._keys = keys
        self._retry = retry
        self.pool = Pool(
            address.scheme,
            address.host,
            verify=verify,
            connect_timeout=connect_timeout,
            timeout=timeout,
            proxy=proxy,
        )

    @property
    def proxy(self) -> str | None:
        """Return the proxy requests go through: the option's, else the environment's."""
        return self.pool.proxy

    @property
    def reachable(self) -> bool:
        """Tell whether this client can reach the service: directly, or by an http:// proxy."""
        return self.pool.reachable

    def call(
        self,
        method: str,
        key: str,
        query: Mapping[str, str] | None = None,
        *,
        what: str,
        body: Body | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: Callable[[BaseException], bool] = transient,
    ) -> Answer:
        """Send ``method`` on ``key`` ("" for the bucket); return the 2xx answer, or raise.

        ``what`` names the operation in error messages; ``retryable`` says
        which failures to send again (transient ones by default).
        """
        if not self.reachable:
            raise UnsupportedOperation(
                f"{what}: stowage's own S3 calls go directly or through an http:// proxy, "
                f"not through {self.pool.proxy_scheme}:// proxies."
            )

        def once() -> Answer:
            with _ERRORS.translate(what):
                return self._send(method, key, dict(query or {}), body, dict(headers or {}))

        return self._retry.run(once, retryable=retryable)

    def close(self) -> None:
        """Close the idle connections; a later call opens new ones."""
        self.pool.close()

    # -- one request ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        key: str,
        query: dict[str, str],
        body: Body | None,
        headers: dict[str, str],
    ) -> Answer:
        access, secret, token = self._keys()
        address = self.address
        target, signed = _sigv4.sign_headers(
            method=method,
            scheme=address.scheme,
            host=address.host,
            path=address.path(key),
            query=query,
            headers=headers,
            region=self._region,
            access_key=access,
            secret_key=secret,
            session_token=token,
        )
        response = self.pool.send(method, target, signed, body)
        if response.status >= 300:
            raise Refusal.from_xml(response.status, response.body)
        if _late_error(response.body):
            # A 200 whose body reports a failure that came late (CompleteMultipartUpload
            # does this): S3 says to send the request again, as after a 500.
            raise Refusal.from_xml(500, response.body)
        return Answer(response.status, response.headers, response.body)
