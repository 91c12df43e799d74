"""Send the server's own upload calls to a service with the standard library.

The resumable and block-list calls of direct uploads (GCS, Azure) are a few
small requests to URLs the drivers sign; no SDK is needed for them (S3's
multipart calls go through the S3 driver's own client). Errors
become stowage's exceptions, chained to the cause; statuses a protocol
uses as answers (a GCS ``308``, an Azure ``404`` …) are returned instead.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from email.message import Message

from stowage.drivers.options import tls_context
from stowage.exceptions import AccessDenied, NotFound, ServiceError, ServiceUnavailable
from stowage.records import record

__all__ = ["Answer", "send", "tls_context"]


@record
class Answer:
    """One response: its status, headers and body."""

    status: int
    headers: Message
    body: bytes


def send(
    method: str,
    url: str,
    *,
    what: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    context: ssl.SSLContext | None = None,
    accept: Collection[int] = (),
) -> Answer:
    """Send one request; return the answer if it is 2xx or in ``accept``, else raise.

    ``what`` names the operation for error messages; it never holds a URL,
    which may carry a signature.
    """
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(  # the URL is the configured endpoint, signed
            request, timeout=timeout, context=context
        ) as response:
            return Answer(response.status, response.headers, bytes(response.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read()
        if exc.code in accept:
            return Answer(exc.code, exc.headers, detail)
        text = detail[:500].decode(errors="replace")
        if exc.code == 404:
            raise NotFound(f"{what}: {text}") from exc
        if exc.code in (401, 403):
            raise AccessDenied(f"{what}: {text}") from exc
        if exc.code >= 500:
            raise ServiceUnavailable(f"{what}: HTTP {exc.code} {text}") from exc
        raise ServiceError(f"{what}: HTTP {exc.code} {text}") from exc
    except OSError as exc:
        raise ServiceUnavailable(f"{what}: {exc}") from exc
