"""Sign V4 URLs for objects, with an HMAC key, an RSA key, or the IAM signBlob API.

An HMAC key (``hmac_access_id`` and ``hmac_secret``) signs locally with
``GOOG4-HMAC-SHA256``: a few microseconds a URL, no request, no client. A
service-account key (from ``credentials`` or Application Default
Credentials) gives an RSA signature, a few hundred microseconds: the same
URL the client library makes, for less of its time. Where no key is at hand
(workload identity, the metadata server), ``iam_sign_blob`` has the IAM
``signBlob`` API sign the same string, one request per URL. Without any,
signing raises :class:`~stowage.exceptions.UnsupportedOperation` saying which
to configure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from stowage.drivers import _sigv4
from stowage.drivers.gcs.connection import Connection
from stowage.exceptions import ConfigurationError, UnsupportedOperation

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

__all__ = ["Signer"]

#: Response-header overrides a signed URL may carry, by the names callers use: their query names.
_OVERRIDES: Final = {
    "ResponseContentDisposition": "response-content-disposition",
    "response-content-disposition": "response-content-disposition",
    "response_disposition": "response-content-disposition",
    "ResponseContentType": "response-content-type",
    "response-content-type": "response-content-type",
    "response_type": "response-content-type",
}
_SIGNING_HELP: Final = (
    "Give options 'hmac_access_id' and 'hmac_secret' an HMAC key of a service account, or "
    "option 'credentials' a service-account key (a JSON file path or its dict); or, "
    "under workload identity or the metadata server, set 'iam_sign_blob' (and 'sa_email' "
    "if the credentials do not name their service account) to sign through the IAM "
    "signBlob API, one request per URL, with roles/iam.serviceAccountTokenCreator on that "
    "account; or set 'querystring_auth' to False for public, unsigned URLs."
)


@functools.lru_cache(maxsize=16)
def _url_parts(base: str) -> tuple[str, str, str]:
    """Return the scheme, host and path (no trailing slash) of a base URL."""
    parts = urlsplit(base)
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


class Signer:
    """Sign URLs for the objects of one bucket, as the options say."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        #: The credentials last seen, with a presigner if their own key signs here.
        self._local: tuple[Credentials, _sigv4.Presigner | None] | None = None
        #: Presigns with the HMAC key, once it is first asked for.
        self._hmac: _sigv4.Presigner | None = None
        #: The credentials last seen with ``iam_sign_blob``, and their signBlob presigner.
        self._iam: tuple[Credentials, _sigv4.Presigner] | None = None

    def sign(
        self,
        key: str,
        *,
        method: str,
        seconds: int,
        parameters: Mapping[str, str] | None,
        domain: str | None,
    ) -> str:
        """Return a V4 signed URL valid ``seconds``, on ``domain`` (a bucket-bound host)."""
        conn = self._conn
        if conn.options.hmac_access_id is not None:
            return self._sign_with_hmac(key, method, seconds, parameters, domain)
        credentials = self._credentials()
        local = self._local
        if local is None or local[0] is not credentials:
            local = self._local = (credentials, _local_key(credentials))
        if local[1] is not None and not conn.options.iam_sign_blob:
            # A service account's own key: the client library's V4 process, done here.
            return self._presign(local[1], key, method, seconds, parameters, domain)
        iam = self._iam
        if iam is None or iam[0] is not credentials:
            iam = self._iam = (credentials, self._iam_presigner(credentials))
        presigner = iam[1]

        def sign_once() -> str:
            return self._presign(presigner, key, method, seconds, parameters, domain)

        # Only signBlob makes requests (a token refresh, the signature): safe to repeat.
        return conn.call(conn.what("signing", key), sign_once)

    def _credentials(self) -> Credentials:
        conn = self._conn
        conn.connect()  # loads the credentials
        signer = conn.signer
        if signer is not None and (conn.options.iam_sign_blob or hasattr(signer, "sign_bytes")):
            return signer
        held = (
            f"the {type(signer).__name__} credentials in use hold none"
            if signer is not None
            else "requests are anonymous"
        )
        raise UnsupportedOperation(
            f"Signing Google Cloud Storage URLs needs a private key, and {held}. {_SIGNING_HELP}"
        )

    def _iam_presigner(self, credentials: Credentials) -> _sigv4.Presigner:
        """Return a presigner whose signatures the IAM ``signBlob`` API makes, as ``sa_email``."""
        from google.auth import iam

        conn = self._conn
        email = conn.options.sa_email or getattr(credentials, "service_account_email", None)
        if not email or email == "default":
            raise ConfigurationError(
                "Option 'iam_sign_blob' needs the signing service account: set 'sa_email'."
            )
        # On the sender's own connections, closed with them.
        signer = iam.Signer(conn.json.transport, credentials, email)  # type: ignore[no-untyped-call]

        def signature(to_sign: bytes) -> str:
            return bytes(signer.sign(to_sign)).hex()

        return _presigner(str(email), "", _sigv4.GOOG4_RSA, signature)

    def _sign_with_hmac(
        self,
        key: str,
        method: str,
        seconds: int,
        parameters: Mapping[str, str] | None,
        domain: str | None,
    ) -> str:
        """Sign with the HMAC key: GCS's V4 process, as for RSA keys but for the names.

        Local computation only: no request, no credentials object.
        """
        presigner = self._hmac
        if presigner is None:
            conn = self._conn
            access_id, secret = conn.options.hmac_access_id, conn.options.hmac_secret
            if not access_id or not secret:
                # A storage unpickled in another process gets secrets back from settings only.
                raise ConfigurationError(
                    "Option 'hmac_access_id' is set but 'hmac_secret' is not: give it in "
                    "OPTIONS or the GS_HMAC_SECRET setting (a storage unpickled in another "
                    "process reads its secrets from settings)."
                )
            presigner = self._hmac = _presigner(access_id, secret, _sigv4.GOOG4)
        return self._presign(presigner, key, method, seconds, parameters, domain)

    def _presign(
        self,
        presigner: _sigv4.Presigner,
        key: str,
        method: str,
        seconds: int,
        parameters: Mapping[str, str] | None,
        domain: str | None,
    ) -> str:
        """Sign by GCS's V4 process here, with the HMAC key or a service account's own key."""
        conn = self._conn
        if domain is None:
            scheme, host, base = _url_parts(conn.base_url)
            path = f"{base}/{conn.bucket_name}/{key}"
        else:
            scheme, host, base = _url_parts(domain)
            path = f"{base}/{key}"
        return presigner.url(
            method=method,
            scheme=scheme,
            host=host,
            path=path,
            expires=seconds,
            parameters=parameters,
        )


def _presigner(
    access: str,
    secret: str,
    dialect: _sigv4.Dialect,
    signature: Callable[[bytes], str] | None = None,
) -> _sigv4.Presigner:
    return _sigv4.Presigner(
        region="auto",
        access_key=access,
        secret_key=secret,
        dialect=dialect,
        renames=_OVERRIDES,
        signature=signature,
    )


def _local_key(credentials: Credentials) -> _sigv4.Presigner | None:
    """Return a presigner signing with ``credentials``' own key, if they hold one.

    Other credentials (impersonation, the metadata server) sign through a
    request: ``iam_sign_blob``.
    """
    from google.oauth2 import service_account

    if not isinstance(credentials, service_account.Credentials):
        return None
    sign_key = credentials.signer.sign

    def signature(to_sign: bytes) -> str:
        return bytes(sign_key(to_sign)).hex()

    return _presigner(str(credentials.signer_email), "", _sigv4.GOOG4_RSA, signature)
