"""Sign requests with AWS Signature Version 4 and its GCS twin, in plain Python.

obstore's own ``sign()`` can add neither response-header overrides
(``response-content-disposition`` …) nor sign for another host, and costs
more per URL than this: the signing key is derived once per day and region
and cached, so a URL is one HMAC over a short canonical request.

Google Cloud Storage signs with HMAC keys by the same process under other
names (``GOOG4-HMAC-SHA256``, ``X-Goog-*`` parameters, a ``GOOG4`` key
prefix, the scope ``date/auto/storage/goog4_request``): a :class:`Dialect`
holds those names, so both services share one signer. GCS signs with a
service account's RSA key by that process too (``GOOG4-RSA-SHA256``): only
the last step differs, an RSA signature of the string to sign in place of the
HMAC, which :class:`Presigner` takes as ``signature``.

:func:`sign_headers` signs a request in its ``Authorization`` header
instead, for the calls the S3 driver sends itself (multipart uploads): every
header given is signed, ``x-amz-*`` ones included, as S3 requires.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from stowage.drivers.base import MAX_SIGNED_SECONDS, signed_seconds

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = [
    "AWS4",
    "GOOG4",
    "GOOG4_RSA",
    "MAX_EXPIRES",
    "RESPONSE_PARAMETERS",
    "UNSIGNED_PAYLOAD",
    "Dialect",
    "Presigner",
    "post_policy_fields",
    "sign_headers",
    "sign_post_policy",
]

#: The longest validity SigV4 allows: seven days.
MAX_EXPIRES = MAX_SIGNED_SECONDS

#: The payload hash of a request whose body is not signed (S3 takes it over HTTP and HTTPS).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

#: boto3-style names of the response overrides, and their query parameters.
RESPONSE_PARAMETERS = {
    "ResponseCacheControl": "response-cache-control",
    "ResponseContentDisposition": "response-content-disposition",
    "ResponseContentEncoding": "response-content-encoding",
    "ResponseContentLanguage": "response-content-language",
    "ResponseContentType": "response-content-type",
    "ResponseExpires": "response-expires",
}


class Dialect(NamedTuple):
    """Name the parts that tell one service's V4 HMAC signing from another's."""

    #: The algorithm named in the string to sign and the query.
    algorithm: str
    #: What the secret is prefixed with to derive the signing key.
    key_prefix: str
    #: The service part of the credential scope.
    service: str
    #: The last part of the credential scope.
    request_type: str
    #: The prefix of the signing query parameters.
    query_prefix: str


#: AWS Signature Version 4 for S3.
AWS4 = Dialect("AWS4-HMAC-SHA256", "AWS4", "s3", "aws4_request", "X-Amz-")
#: Google Cloud Storage's V4 signing with an HMAC key (region "auto").
GOOG4 = Dialect("GOOG4-HMAC-SHA256", "GOOG4", "storage", "goog4_request", "X-Goog-")
#: Google Cloud Storage's V4 signing with a service account's RSA key (no key prefix).
GOOG4_RSA = GOOG4._replace(algorithm="GOOG4-RSA-SHA256", key_prefix="")


#: A path made only of characters SigV4 leaves unencoded needs no quoting.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/_.~-]*")


@functools.lru_cache(maxsize=1024)
def _quote(value: str) -> str:
    """Quote a query name or value as SigV4 canonicalises it (the same few, over and over)."""
    return quote(value, safe="-_.~")


@functools.lru_cache(maxsize=32)
def _signing_key(secret: str, day: str, region: str, dialect: Dialect = AWS4) -> bytes:
    key = hmac.new(f"{dialect.key_prefix}{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, dialect.service, dialect.request_type):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@functools.lru_cache(maxsize=32)
def _keyed_pads(secret: str, day: str, region: str, dialect: Dialect) -> tuple[HASH, HASH]:
    """Return SHA-256 states fed with the signing key's HMAC pads (RFC 2104).

    Copying these states is cheaper than starting ``hmac.new`` per URL.
    """
    key = _signing_key(secret, day, region, dialect).ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _hmac_hex(secret: str, day: str, region: str, dialect: Dialect, message: bytes) -> str:
    """Return HMAC-SHA256 of ``message`` under the day's signing key, in hex."""
    return _pads_hex(_keyed_pads(secret, day, region, dialect), message)


def _pads_hex(pads: tuple[HASH, HASH], message: bytes) -> str:
    """Return HMAC-SHA256 of ``message`` from the key's pads (see :func:`_keyed_pads`), in hex."""
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return outer.hexdigest()


@functools.lru_cache(maxsize=64)
def _fixed_query(
    access_key: str,
    scope: str,
    amz_date: str,
    expires: int,
    session_token: str | None,
    dialect: Dialect,
    signed_headers: str = "host",
) -> str:
    """Return the quoted canonical query of the signing parameters (same for a whole second)."""
    prefix = dialect.query_prefix
    query = {
        f"{prefix}Algorithm": dialect.algorithm,
        f"{prefix}Credential": f"{access_key}/{scope}",
        f"{prefix}Date": amz_date,
        f"{prefix}Expires": str(expires),
        f"{prefix}SignedHeaders": signed_headers,
    }
    if session_token:
        query[f"{prefix}Security-Token"] = session_token
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))


@functools.lru_cache(maxsize=32)
def _canonical_host(scheme: str, host: str) -> str:
    """Return ``host`` as browsers send it: lower-case, without the scheme's default port.

    The service signs the Host header it receives; "https://S3.example.com:443"
    arrives as "s3.example.com", so that is what must be signed (as botocore does).
    """
    host = host.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme.lower())
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return host


def _signed_headers(host: str, headers: Mapping[str, str] | None) -> tuple[str, str]:
    """Return the signed header names and their canonical block (Host alone is the usual)."""
    if not headers:
        return "host", f"host:{host}\n"
    signed = {"host": host, **{k.lower(): " ".join(v.split()) for k, v in headers.items()}}
    names = sorted(signed)
    return ";".join(names), "".join(f"{name}:{signed[name]}\n" for name in names)


def _timestamp(now: dt.datetime | None) -> str:
    global _last_stamp
    if now is not None:
        return now.strftime("%Y%m%dT%H%M%SZ")
    second = int(time.time())
    last = _last_stamp
    if last[0] != second:
        last = _last_stamp = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
    return last[1]


#: The last second stamped, and its stamp.
_last_stamp: tuple[int, str] = (-1, "")


class _Second(NamedTuple):
    """What every URL a :class:`Presigner` signs in one second shares."""

    amz_date: str
    scope: str
    #: The first lines of the string to sign: algorithm, date and scope.
    preamble: str
    #: The HMAC's inner state already fed ``preamble`` and its outer state
    #: (RFC 2104); None when another signature signs.
    pads: tuple[HASH, HASH] | None
    #: The signing query by expiry (with the signed header names, where more
    #: than Host is signed).
    queries: dict[object, str]
    #: By (scheme, host, expiry), for a URL with neither overrides nor extra
    #: headers: the origin, what follows the path in the canonical request,
    #: and the query up to the signature's value.
    plain: dict[tuple[str, str, int], tuple[str, str, str]]


class Presigner:
    """Presign URLs with one set of keys in one region.

    What every URL of a second shares (the date, the credential scope, the
    signing parameters, the signing key's HMAC pads fed the string to sign's
    first lines) is worked out once that second; a URL then costs its
    canonical request and two hashes. Safe to share between threads: a
    second's state is replaced whole, and its caches only gain entries.
    ``dialect`` chooses the service's names (:data:`AWS4`, :data:`GOOG4`,
    :data:`GOOG4_RSA`); ``signature`` signs the string to sign in place of
    the HMAC under ``secret_key`` (an RSA key's, in hex).
    """

    __slots__ = ("_state", "dialect", "keys", "region", "renames", "signature")

    def __init__(
        self,
        *,
        region: str,
        access_key: str,
        secret_key: str,
        session_token: str | None = None,
        dialect: Dialect = AWS4,
        renames: Mapping[str, str] = RESPONSE_PARAMETERS,
        signature: Callable[[bytes], str] | None = None,
    ) -> None:
        #: The access key, secret and session token that sign.
        self.keys = (access_key, secret_key, session_token)
        self.region = region
        self.dialect = dialect
        self.renames = renames
        #: Signs the string to sign in place of the HMAC (an RSA key's, in hex).
        self.signature = signature
        self._state = _Second("", "", "", None, {}, {})

    def _second(self, amz_date: str) -> _Second:
        """Start the second ``amz_date``: return its state, kept for the URLs that follow."""
        dialect = self.dialect
        day = amz_date[:8]
        scope = f"{day}/{self.region}/{dialect.service}/{dialect.request_type}"
        preamble = f"{dialect.algorithm}\n{amz_date}\n{scope}\n"
        pads = None
        if self.signature is None:
            inner, outer = _keyed_pads(self.keys[1], day, self.region, dialect)
            inner = inner.copy()
            inner.update(preamble.encode())
            pads = (inner, outer)
        state = _Second(amz_date, scope, preamble, pads, {}, {})
        self._state = state
        return state

    def _query(self, state: _Second, expires: int, names: str = "host") -> str:
        """Return the canonical signing query for ``expires`` this second."""
        fixed: object = expires if names == "host" else (expires, names)
        query = state.queries.get(fixed)
        if query is None:
            signed_seconds(expires)
            access_key, _, session_token = self.keys
            query = state.queries[fixed] = _fixed_query(
                access_key, state.scope, state.amz_date, expires, session_token, self.dialect, names
            )
        return query

    def _plain(self, state: _Second, scheme: str, host: str, expires: int) -> tuple[str, str, str]:
        """Return (and keep) the parts of a URL with neither overrides nor extra headers."""
        query = self._query(state, expires)
        canonical_host = _canonical_host(scheme, host)
        parts = (
            f"{scheme}://{canonical_host}",
            f"\n{query}\nhost:{canonical_host}\n\nhost\n{UNSIGNED_PAYLOAD}",
            f"?{query}&{self.dialect.query_prefix}Signature=",
        )
        state.plain[scheme, host, expires] = parts
        return parts

    def url(
        self,
        *,
        method: str,
        scheme: str,
        host: str,
        path: str,
        expires: int,
        parameters: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        """Return a presigned URL for ``method`` on ``scheme://host/path``.

        ``path`` is the unencoded object path ("/bucket/key" or "/key");
        ``parameters`` are response overrides by the names in ``renames``
        (boto3's by default) or raw query parameters, signed with the rest.
        ``headers`` are signed beside Host: the request must carry them with
        exactly these values (``Content-Length`` bounds an upload's size).
        ``now`` fixes the signing time (the clock otherwise).
        """
        if not parameters and not headers and now is None and self.signature is None:
            return self.usual_url(method, scheme, host, path, expires)
        amz_date = _timestamp(now)
        state = self._state
        if state.amz_date != amz_date:
            state = self._second(amz_date)
        host = _canonical_host(scheme, host)
        if headers:
            names, canonical_headers = _signed_headers(host, headers)
        else:
            names, canonical_headers = "host", f"host:{host}\n"
        canonical_query = self._query(state, expires, names)
        if parameters:
            canonical_query = self._with_parameters(canonical_query, parameters)
        canonical_path = _canonical_path(path)
        request = (
            f"{method}\n{canonical_path}\n{canonical_query}\n{canonical_headers}\n{names}\n"
            f"{UNSIGNED_PAYLOAD}"
        )
        unsigned = (
            f"{scheme}://{host}{canonical_path}?{canonical_query}"
            f"&{self.dialect.query_prefix}Signature="
        )
        digest = hashlib.sha256(request.encode()).hexdigest().encode()
        if state.pads is None:
            assert self.signature is not None
            return unsigned + self.signature(state.preamble.encode() + digest)
        return unsigned + _pads_hex(state.pads, digest)

    def usual_url(self, method: str, scheme: str, host: str, path: str, expires: int) -> str:
        """Return :meth:`url` signed now, with neither overrides nor extra headers.

        The usual URL, on the path every URL a storage hands out takes: all
        but the path was worked out this second, so it costs the canonical
        request and two hashes.
        """
        amz_date = _timestamp(None)
        state = self._state
        if state.amz_date != amz_date:
            state = self._second(amz_date)
        pads = state.pads
        if pads is None:
            return self.url(method=method, scheme=scheme, host=host, path=path, expires=expires)
        plain = state.plain.get((scheme, host, expires))
        origin, rest, query = plain or self._plain(state, scheme, host, expires)
        canonical_path = path if _PLAIN_PATH.fullmatch(path) else quote(path, safe="/-_.~")
        request = f"{method}\n{canonical_path}{rest}".encode()
        inner, outer = pads[0].copy(), pads[1].copy()
        inner.update(hashlib.sha256(request).hexdigest().encode())
        outer.update(inner.digest())
        return f"{origin}{canonical_path}{query}{outer.hexdigest()}"

    def _with_parameters(self, canonical_query: str, parameters: Mapping[str, str]) -> str:
        """Return the canonical query with response overrides or raw parameters added."""
        renames = self.renames
        extra = {renames.get(k, k): v for k, v in parameters.items()}
        if min(extra) > f"{self.dialect.query_prefix}SignedHeaders":
            # Lower-case names (response-*) sort after every signing parameter.
            return canonical_query + "".join(
                f"&{_quote(k)}={_quote(v)}" for k, v in sorted(extra.items())
            )
        pairs = [p.split("=", 1) for p in canonical_query.split("&")]
        pairs += [[_quote(k), _quote(v)] for k, v in extra.items()]
        return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_path(path: str) -> str:
    return path if _PLAIN_PATH.fullmatch(path) else quote(path, safe="/-_.~")


def sign_headers(
    *,
    method: str,
    scheme: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    region: str,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    payload_hash: str = UNSIGNED_PAYLOAD,
    now: dt.datetime | None = None,
) -> tuple[str, dict[str, str]]:
    """Sign a request in its ``Authorization`` header; return its target and headers.

    ``path`` is the unencoded object path and ``query`` the raw query
    parameters ("uploads": ""). The target is the encoded path and query
    exactly as signed; the headers are ``headers`` (every one signed) plus
    ``Host``, ``x-amz-date``, ``x-amz-content-sha256`` (``payload_hash``),
    the session token if any, and ``Authorization``.
    """
    amz_date = _timestamp(now)
    day = amz_date[:8]
    scope = f"{day}/{region}/{AWS4.service}/{AWS4.request_type}"
    sent = {
        **headers,
        "Host": _canonical_host(scheme, host),
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
    }
    if session_token:
        sent["x-amz-security-token"] = session_token
    canonical_headers = sorted(
        (name.lower(), " ".join(str(value).split())) for name, value in sent.items()
    )
    signed = ";".join(name for name, _ in canonical_headers)
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted((_quote(k), _quote(v)) for k, v in query.items())
    )
    canonical_path = _canonical_path(path)
    canonical_request = "\n".join(
        [
            method,
            canonical_path,
            canonical_query,
            "".join(f"{name}:{value}\n" for name, value in canonical_headers),
            signed,
            payload_hash,
        ]
    )
    to_sign = (
        f"{AWS4.algorithm}\n{amz_date}\n{scope}\n"
        + hashlib.sha256(canonical_request.encode()).hexdigest()
    )
    signature = _hmac_hex(secret_key, day, region, AWS4, to_sign.encode())
    sent["Authorization"] = (
        f"{AWS4.algorithm} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    target = f"{canonical_path}?{canonical_query}" if canonical_query else canonical_path
    return target, sent


def post_policy_fields(
    *, bucket: str, key: str, region: str, access_key: str, session_token: str | None
) -> tuple[dict[str, str], list[Any]]:
    """Return the form fields and policy conditions of a POST upload to ``key``."""
    amz_date = _timestamp(None)
    fields = {
        "key": key,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{access_key}/{amz_date[:8]}/{region}/s3/aws4_request",
        "x-amz-date": amz_date,
    }
    if session_token:
        fields["x-amz-security-token"] = session_token
    conditions: list[Any] = [{"bucket": bucket}, *({k: v} for k, v in fields.items())]
    return fields, conditions


def sign_post_policy(
    conditions: list[Any], expires: dt.timedelta, secret_key: str, fields: Mapping[str, str]
) -> dict[str, str]:
    """Return the ``policy`` and ``x-amz-signature`` fields for ``conditions``."""
    signed_seconds(expires, "A signed upload")
    import base64
    import json

    deadline = dt.datetime.now(dt.UTC) + expires
    document = {"expiration": deadline.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "conditions": conditions}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    _, day, region = fields["x-amz-credential"].split("/")[:3]
    signature = hmac.new(_signing_key(secret_key, day, region), policy.encode(), hashlib.sha256)
    return {"policy": policy, "x-amz-signature": signature.hexdigest()}
