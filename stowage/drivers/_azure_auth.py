"""Sign Azure SAS URLs and serve token credentials to obstore.

SAS URLs are signed here rather than by obstore, which signs the
percent-encoded path where the service signs the blob name itself (names with
a space, ``%``, ``#`` or non-ASCII letters then get 403), and can add neither
response-header overrides (``rscd``, ``rsct`` …) nor another host. The layouts
of the strings to sign are those of the service version :data:`SAS_VERSION`;
azure-storage-blob's ``generate_blob_sas`` signs identically (the tests check).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import inspect
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from stowage.exceptions import (
    AccessDenied,
    ConfigurationError,
    ServiceError,
    ServiceUnavailable,
    StowageError,
    UnsupportedOperation,
    translate,
)
from stowage.records import record

__all__ = [
    "MAX_DELEGATION",
    "SAS_TIME",
    "SAS_VERSION",
    "STORAGE_SCOPE",
    "TokenCredentialProvider",
    "UserDelegationKey",
    "account_sas",
    "blob_sas",
    "container_sas",
    "fetch_user_delegation_key",
    "response_overrides",
]

#: The service version of the SAS URLs signed here (its string-to-sign layout).
SAS_VERSION = "2025-11-05"
#: How SAS times are written.
SAS_TIME = "%Y-%m-%dT%H:%M:%SZ"
#: The longest a user delegation key (so a user-delegation SAS) may last.
MAX_DELEGATION = dt.timedelta(days=7)
#: Response-header overrides, in the order the string to sign takes them.
_OVERRIDES = ("rscc", "rscd", "rsce", "rscl", "rsct")
_OVERRIDE_NAMES = {
    **{name: name for name in _OVERRIDES},
    "ResponseCacheControl": "rscc",
    "ResponseContentDisposition": "rscd",
    "ResponseContentEncoding": "rsce",
    "ResponseContentLanguage": "rscl",
    "ResponseContentType": "rsct",
    "cache_control": "rscc",
    "content_disposition": "rscd",
    "content_encoding": "rsce",
    "content_language": "rscl",
    "content_type": "rsct",
}


def response_overrides(parameters: Mapping[str, str]) -> dict[str, str]:
    """Return the SAS query fields (``rscd`` …) of ``url()``'s ``parameters``."""
    overrides: dict[str, str] = {}
    for name, value in parameters.items():
        query_name = _OVERRIDE_NAMES.get(name)
        if query_name is None:
            raise UnsupportedOperation(
                f"Azure SAS URLs take no parameter {name!r}; response overrides are "
                f"{sorted(n for n in _OVERRIDE_NAMES if n[0].isupper())} "
                "(or django-storages' cache_control, content_disposition … names)."
            )
        if query_name in overrides:
            raise UnsupportedOperation(f"Response override {query_name!r} is given twice.")
        overrides[query_name] = str(value)
    return overrides


def blob_sas(
    *,
    account: str,
    container: str,
    blob: str,
    permission: str,
    expiry: str,
    overrides: Mapping[str, str],
    account_key: str | None = None,
    delegation: UserDelegationKey | None = None,
) -> str:
    """Return the query of a SAS for one blob (``sr=b``).

    A service SAS signed with ``account_key``, or a user-delegation SAS signed
    with ``delegation``. The canonicalized resource names the blob as it is,
    unencoded: the service signs the decoded name, whatever the URL's encoding.
    """
    return _service_sas(
        f"/blob/{account}/{container}/{blob}",
        "b",
        permission=permission,
        expiry=expiry,
        overrides=overrides,
        account_key=account_key,
        delegation=delegation,
    )


def container_sas(
    *, account: str, container: str, account_key: str, permission: str, expiry: str
) -> str:
    """Return the query of a service SAS for a container (``sr=c``), signed with the key."""
    return _service_sas(
        f"/blob/{account}/{container}",
        "c",
        permission=permission,
        expiry=expiry,
        overrides={},
        account_key=account_key,
    )


def _service_sas(
    resource: str,
    kind: str,
    *,
    permission: str,
    expiry: str,
    overrides: Mapping[str, str],
    account_key: str | None = None,
    delegation: UserDelegationKey | None = None,
) -> str:
    pairs = [("sv", SAS_VERSION), ("se", expiry), ("sr", kind), ("sp", permission)]
    if delegation is None:
        assert account_key is not None
        signing_key = account_key
        # identifier, IP, protocol
        middle = ["", "", ""]
    else:
        signing_key = delegation.value
        keyed = list(zip(_DELEGATION_FIELDS, delegation.fields(), strict=True))
        pairs += keyed
        # the key's fields, then agent object id, user object id, correlation id,
        # delegated user tenant and object ids, IP, protocol
        middle = [value for _, value in keyed] + ["", "", "", "", "", "", ""]
    # permission, start, expiry, resource, …, version, resource type,
    # snapshot time, encryption scope, then the five overrides.
    fields = [permission, "", expiry, resource, *middle, SAS_VERSION, kind, "", ""]
    fields += [overrides.get(name, "") for name in _OVERRIDES]
    try:
        secret = _decode_key(signing_key)
    except ValueError:
        if delegation is not None:
            raise ServiceError("The user delegation key is not valid base64.") from None
        raise ConfigurationError("Option 'account_key' is not valid base64.") from None
    digest = hmac.new(secret, "\n".join(fields).encode("utf-8"), hashlib.sha256).digest()
    pairs += [(name, overrides[name]) for name in _OVERRIDES if name in overrides]
    pairs.append(("sig", base64.b64encode(digest).decode("ascii")))
    return "&".join(f"{name}={_quote(value)}" for name, value in pairs)


def account_sas(*, account: str, account_key: str, permission: str, expiry: str) -> str:
    """Return the query of an account SAS for the blob service itself (``ss=b&srt=s``).

    It grants ``permission`` on service-level operations only (Get and Set
    Blob Service Properties), not on any container or blob.
    """
    pairs = [("sv", SAS_VERSION), ("ss", "b"), ("srt", "s"), ("sp", permission), ("se", expiry)]
    # account, permission, services, resource types, start, expiry, IP, protocol,
    # version, encryption scope: each line ends with a newline.
    fields = [account, permission, "b", "s", "", expiry, "", "", SAS_VERSION, ""]
    try:
        secret = _decode_key(account_key)
    except ValueError:
        raise ConfigurationError("Option 'account_key' is not valid base64.") from None
    digest = hmac.new(secret, "\n".join([*fields, ""]).encode("utf-8"), hashlib.sha256).digest()
    pairs.append(("sig", base64.b64encode(digest).decode("ascii")))
    return "&".join(f"{name}={_quote(value)}" for name, value in pairs)


#: Values made only of these (times, versions, signatures) are quoted by a table.
_SIMPLE = re.compile(r"[A-Za-z0-9_.~:+/=-]*")
_SIMPLE_QUOTES = str.maketrans({":": "%3A", "+": "%2B", "/": "%2F", "=": "%3D"})


def _quote(value: str) -> str:
    # urllib's quote costs a few microseconds a call; most SAS fields are simple.
    if _SIMPLE.fullmatch(value):
        return value.translate(_SIMPLE_QUOTES)
    return quote(value, safe="")


@functools.lru_cache(maxsize=8)
def _decode_key(key: str) -> bytes:
    return base64.b64decode(key, validate=True)


#: Query names of a user delegation key's fields, in the string to sign's order.
_DELEGATION_FIELDS = ("skoid", "sktid", "skt", "ske", "sks", "skv")


@record
class UserDelegationKey:
    """Hold a user delegation key, as Get User Delegation Key returns it."""

    signed_oid: str
    signed_tid: str
    signed_start: str
    signed_expiry: str
    signed_service: str
    signed_version: str
    value: str = field(repr=False)

    def fields(self) -> tuple[str, ...]:
        """Return the key's fields in the string to sign's order."""
        return (
            self.signed_oid,
            self.signed_tid,
            self.signed_start,
            self.signed_expiry,
            self.signed_service,
            self.signed_version,
        )

    @property
    def expires(self) -> dt.datetime:
        """Return when the key stops signing."""
        expires = dt.datetime.fromisoformat(self.signed_expiry)
        return expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)


def fetch_user_delegation_key(
    endpoint: str,
    token: str,
    *,
    start: dt.datetime,
    context: ssl.SSLContext,
    timeout: float,
) -> UserDelegationKey:
    """Ask the blob service at ``endpoint`` for a key valid from ``start`` for 7 days."""
    body = (
        "<?xml version='1.0' encoding='utf-8'?><KeyInfo>"
        f"<Start>{start.strftime(SAS_TIME)}</Start>"
        f"<Expiry>{(start + MAX_DELEGATION).strftime(SAS_TIME)}</Expiry></KeyInfo>"
    )
    request = urllib.request.Request(
        f"{endpoint}/?restype=service&comp=userdelegationkey",
        data=body.encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/xml",
            "x-ms-version": SAS_VERSION,
        },
    )
    with (
        translate("getting a user delegation key to sign URLs", _http_error),
        urllib.request.urlopen(request, timeout=timeout, context=context) as response,
    ):
        root = ElementTree.fromstring(response.read())
    values = {child.tag: child.text or "" for child in root}
    names = ("SignedOid", "SignedTid", "SignedStart", "SignedExpiry", "SignedService")
    missing = [name for name in (*names, "SignedVersion", "Value") if not values.get(name)]
    if missing:
        raise ServiceError(f"The user delegation key the service returned lacks {missing}.")
    return UserDelegationKey(
        signed_oid=values["SignedOid"],
        signed_tid=values["SignedTid"],
        signed_start=values["SignedStart"],
        signed_expiry=values["SignedExpiry"],
        signed_service=values["SignedService"],
        signed_version=values["SignedVersion"],
        value=values["Value"],
    )


#: The scope of a token for Azure Storage.
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: Refresh a cached token this long before it expires (at most half its lifetime).
_REFRESH_MARGIN = 300.0


class TokenCredentialProvider:
    """Serve a token credential's tokens to obstore, cached until shortly before expiry.

    The credential is any object with azure-core's ``get_token(*scopes)``
    returning an ``AccessToken`` (``token``, ``expires_on`` in epoch
    seconds), as django-storages' ``token_credential`` takes it.
    """

    def __init__(self, credential: Any, clock: Callable[[], float] = time.time) -> None:
        get_token = getattr(credential, "get_token", None)
        if not callable(get_token):
            raise ConfigurationError(
                "Option 'token_credential' must have azure-core's get_token(*scopes) "
                f"(azure-identity's DefaultAzureCredential, …); got {type(credential).__name__}."
            )
        if inspect.iscoroutinefunction(get_token):
            raise ConfigurationError(
                "Option 'token_credential' must be a synchronous credential "
                "(azure.identity, not azure.identity.aio)."
            )
        self.credential = credential
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires_on = 0.0
        self._refresh_at = 0.0

    def __call__(self) -> dict[str, Any]:
        """Return obstore's bearer-token credential, fetching a new token when due."""
        with self._lock:
            now = self._clock()
            if not self._token or now >= self._refresh_at:
                self._fetch(now)
            expires_at = dt.datetime.fromtimestamp(self._expires_on, dt.UTC)
            return {"token": self._token, "expires_at": expires_at}

    def _fetch(self, now: float) -> None:
        with translate("getting a token from 'token_credential'", _credential_error):
            access = self.credential.get_token(STORAGE_SCOPE)
        token, expires_on = getattr(access, "token", None), getattr(access, "expires_on", None)
        if not isinstance(token, str) or not isinstance(expires_on, (int, float)):
            raise ConfigurationError(
                "Option 'token_credential': get_token() must return an AccessToken "
                f"(token, expires_on); got {type(access).__name__}."
            )
        self._token, self._expires_on = token, float(expires_on)
        margin = min(_REFRESH_MARGIN, max(self._expires_on - now, 0.0) / 2)
        self._refresh_at = self._expires_on - margin


def _http_error(exc: BaseException) -> StowageError | None:
    if isinstance(exc, urllib.error.HTTPError):
        detail = f"HTTP {exc.code} {exc.reason}"
        if exc.code in (401, 403):
            return AccessDenied(f"getting a user delegation key: {detail}")
        if exc.code >= 500:
            return ServiceUnavailable(f"getting a user delegation key: {detail}")
        return ServiceError(f"getting a user delegation key: {detail}")
    if isinstance(exc, (urllib.error.URLError, OSError)):
        return ServiceUnavailable(f"getting a user delegation key: {exc}")
    if isinstance(exc, ElementTree.ParseError):
        return ServiceError(f"getting a user delegation key: unreadable answer: {exc}")
    return None


def _credential_error(exc: BaseException) -> StowageError | None:
    # azure-identity's errors say which sources it tried; their first line is enough.
    first = str(exc).split("\n", 1)[0][:300]
    return AccessDenied(f"getting a token from 'token_credential': {type(exc).__name__}: {first}")
