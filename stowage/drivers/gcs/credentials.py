"""Make the credentials and the sender of the JSON API's requests, with google-auth alone.

Loaded at a storage's first request, not when it is declared. Credentials
come from the ``credentials`` option (a key file, its content, or a
google.auth object), else Application Default Credentials, scoped to
Cloud Storage as the client library scopes them. Tokens are refreshed
through :class:`TokenTransport`, on stowage's own connections: no HTTP
library is imported for it.

Requests go on stowage's pool (:class:`~stowage.drivers.gcs.json_api.JsonApi`)
unless the pool cannot go: behind an ``https://`` or SOCKS proxy, or where
google-auth's rules call for a client certificate (mutual TLS). Then they go
through google-auth's ``AuthorizedSession``
(:class:`~stowage.drivers.gcs.json_api.SessionApi`), which speaks both, at
the mutual-TLS endpoint when no other is named.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import google.auth
import google.auth.exceptions
import google.auth.transport
from google.auth.credentials import AnonymousCredentials, Credentials, with_scopes_if_required
from google.auth.transport import mtls
from google.oauth2 import service_account

from stowage.drivers.gcs.json_api import DEFAULT_ENDPOINT, JsonApi, Pools, SessionApi
from stowage.drivers.gcs.options import GCSOptions
from stowage.drivers.http_pool import UntrustedCertificate
from stowage.exceptions import ConfigurationError

__all__ = ["MTLS_ENDPOINT", "SCOPES", "TokenTransport", "load", "sender"]

#: What the credentials are scoped to: Cloud Storage, as the client library asks.
SCOPES: Final = (
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/devstorage.read_write",
)
#: The JSON API's endpoint for clients that present a certificate.
MTLS_ENDPOINT: Final = "https://storage.mtls.googleapis.com"


def load(options: GCSOptions, *, emulator: bool) -> tuple[Credentials, Credentials | None]:
    """Return the credentials requests carry, and those that sign URLs (None: anonymous).

    Requests to an emulator named by ``STORAGE_EMULATOR_HOST`` are anonymous
    unless credentials are given, as with the client library.
    """
    given = _given(options.credentials)
    if options.anonymous or (given is None and emulator):
        anonymous: Credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return anonymous, given
    if given is None:
        try:
            given, _ = google.auth.default()
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigurationError(
                "No Google Cloud credentials: set option 'credentials' (a service-account "
                "key file or dict), GOOGLE_APPLICATION_CREDENTIALS, or run where "
                "Application Default Credentials exist; or set 'anonymous' for an emulator."
            ) from exc
    # Requests carry a copy scoped to Cloud Storage; signBlob needs the credentials' own.
    scoped: Credentials = with_scopes_if_required(given, SCOPES)  # type: ignore[no-untyped-call]
    return scoped, given


def sender(endpoint: str | None, credentials: Credentials, timeout: float) -> JsonApi:
    """Return what sends the JSON API's requests: stowage's pool where it can go.

    ``endpoint`` is the base URL named by the options or the environment
    (None: the service's own, or its mutual-TLS endpoint as
    ``GOOGLE_API_USE_MTLS_ENDPOINT`` says).
    """
    mode = os.environ.get("GOOGLE_API_USE_MTLS_ENDPOINT", "auto")
    if mode not in ("auto", "always", "never"):
        raise ConfigurationError(
            f"GOOGLE_API_USE_MTLS_ENDPOINT is {mode!r}: set it to 'auto', 'always' or 'never'."
        )

    def base_url(mutual_tls: bool) -> str:
        if endpoint is not None:
            return endpoint
        if mode == "always" or (mode == "auto" and mutual_tls):
            return MTLS_ENDPOINT
        return DEFAULT_ENDPOINT

    if not mtls.should_use_client_cert():  # type: ignore[no-untyped-call]
        pools = Pools(timeout)
        api = JsonApi(base_url(False), credentials, pools, TokenTransport(pools))
        if api.pool.reachable:
            return api
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    session.configure_mtls_channel()  # type: ignore[no-untyped-call]
    return SessionApi(base_url(session.is_mtls), session, timeout)


class TokenTransport(google.auth.transport.Request):
    """Send google-auth's own requests (token refreshes, signBlob) on stowage's connections.

    One pool per origin (the token endpoint, the metadata server), from
    ``pools``. Where a pool cannot go (an ``https://`` or SOCKS proxy), the
    request goes through google-auth's ``requests`` transport instead.
    """

    def __init__(self, pools: Pools) -> None:
        self._pools = pools

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        """Send one request; raise google-auth's TransportError for a failed connection."""
        parts = urlsplit(url)
        pool = self._pools.get(parts.scheme, parts.netloc)
        if not pool.reachable:
            from google.auth.transport.requests import Request

            answer: google.auth.transport.Response = Request()(
                url, method, body, headers, timeout, **kwargs
            )
            return answer
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"Host": parts.netloc, "User-Agent": "django-stowage", **(headers or {})}
        try:
            response = pool.send(method, target, sent, body)
        except (OSError, http.client.HTTPException, UntrustedCertificate) as exc:
            # The endpoint, by its path: a query is left out of messages.
            where = f"{parts.scheme}://{parts.netloc}{parts.path}"
            raise google.auth.exceptions.TransportError(f"could not reach {where}: {exc}") from exc  # type: ignore[no-untyped-call]
        return _Answer(response.status, dict(response.headers), response.body)


class _Answer(google.auth.transport.Response):
    """One answer, as google-auth reads it."""

    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self._status = status
        self._headers = headers
        self._data = data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


def _given(value: Any) -> Credentials | None:
    """Return the credentials of the ``credentials`` option, loaded (None: not set)."""
    if value is None:
        return None
    if isinstance(value, Credentials):
        return value
    try:
        if isinstance(value, Mapping):
            info = dict(value)
        else:
            with open(value, encoding="utf-8") as handle:
                info = json.load(handle)
        return _from_info(info)
    except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as exc:
        # The message names the problem (a missing field, an unreadable
        # file), never the key material.
        raise ConfigurationError(
            f"Option 'credentials' could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc


def _from_info(info: Any) -> Credentials:
    """Build credentials from a key file's content, accepting only known kinds.

    google-auth's generic loaders are deprecated for accepting any kind of
    configuration (some run commands or fetch URLs); these three only sign or
    refresh tokens.
    """
    from google.auth import impersonated_credentials
    from google.oauth2 import credentials as user_credentials

    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        return service_account.Credentials.from_service_account_info(info)  # type: ignore[no-any-return, no-untyped-call]
    if kind == "authorized_user":
        return user_credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-any-return, no-untyped-call]
    if kind == "impersonated_service_account":
        return impersonated_credentials.Credentials.from_impersonated_service_account_info(  # type: ignore[no-any-return, no-untyped-call]
            info
        )
    raise ConfigurationError(
        f"Option 'credentials' holds credentials of type {kind!r}; this option takes "
        "'service_account', 'authorized_user' or 'impersonated_service_account'. For other "
        "kinds (external_account …) pass a google.auth Credentials object, or leave the "
        "option unset and point GOOGLE_APPLICATION_CREDENTIALS at the file."
    )
