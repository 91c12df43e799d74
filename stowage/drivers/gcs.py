"""Store objects in Google Cloud Storage through the official client's JSON API.

GCS is not on obstore (unlike S3 and Azure) because obstore speaks GCS's XML
API, which no local emulator implements; the JSON API is testable on
fake-gcs-server. The driver contract is the same, so the backend can move.

Writes: a body of at most 8 MiB goes up in one multipart request; a larger
one in a resumable upload sent ``blob_chunk_size`` bytes at a time, so memory
stays bounded whatever the size. ``if_absent`` adds ``ifGenerationMatch=0``,
an atomic create. A stream that fails midway leaves its resumable upload
unfinished, and an unfinished upload never becomes an object.

Reads: a short ranged read is one request whose answer tells the size when
the object ends inside the range; otherwise the object's metadata comes
first, then ranged requests of at most ``blob_chunk_size`` bytes, each pinned
to the generation the metadata named so a concurrent replacement fails the
read instead of mixing two versions.

Signing: V4 signed URLs, signed locally with an HMAC key (``hmac_access_id``
and ``hmac_secret``: ``GOOG4-HMAC-SHA256``, a few microseconds a URL, no
request) or a service-account key (from ``credentials`` or Application
Default Credentials: an RSA signature, a few hundred microseconds), or through
the IAM ``signBlob`` API with ``iam_sign_blob`` where no key is at hand
(workload identity, the metadata server). Without any, ``sign()`` raises
:class:`~stowage.exceptions.UnsupportedOperation` saying which to configure.

Compression: with ``gzip``, bodies of the ``gzip_content_types`` are stored
gzip-compressed (``Content-Encoding: gzip``, served decompressed to clients
that do not accept gzip). Reads return the original bytes, and sizes are the
original sizes, kept in the object's metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from stowage.config import option
from stowage.drivers import _gzip, _sigv4
from stowage.drivers.base import (
    URL_SAFE,
    Capability,
    Download,
    Driver,
    DriverOptions,
    MiB,
    ObjectInfo,
    Prefix,
    Readable,
    signed_seconds,
)
from stowage.drivers.errors import ErrorTable, Rule
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    MissingDependency,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    StowageError,
    UnsupportedOperation,
    translate,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    #: What the 'credentials' option accepts.
    CredentialsOption = str | os.PathLike[str] | Mapping[str, Any] | Credentials | None
else:
    # Checked in GCSOptions.__post_init__: naming Credentials here would import
    # google.auth whenever a storage is declared, long before any request.
    CredentialsOption = Any

__all__ = ["GCSDriver", "GCSOptions"]

_KiB: Final = 1024
#: Resumable chunks must be multiples of this (the service's rule).
_CHUNK_QUANTUM: Final = 256 * _KiB
_DEFAULT_CHUNK: Final = 8 * MiB
#: Bodies up to this size go up in one request (the client's own multipart limit).
_MULTIPART_LIMIT: Final = 8 * MiB
#: Compressed bodies are spooled in memory up to this size, then on disk.
_READ_BLOCK: Final = 1 * MiB
_DEFAULT_ENDPOINT: Final = "https://storage.googleapis.com"
_PREDEFINED_ACLS: Final = frozenset(
    {
        "authenticatedRead",
        "bucketOwnerFullControl",
        "bucketOwnerRead",
        "private",
        "projectPrivate",
        "publicRead",
    }
)
_TEXT_PARAMETERS: Final = frozenset(
    {
        "acl",
        "cache_control",
        "content_disposition",
        "content_encoding",
        "content_language",
        "content_type",
        "storage_class",
    }
)
#: Response-header overrides a signed URL may carry, by the names callers use.
_RESPONSE_OVERRIDES: Final = {
    "ResponseContentDisposition": "response_disposition",
    "response-content-disposition": "response_disposition",
    "response_disposition": "response_disposition",
    "ResponseContentType": "response_type",
    "response-content-type": "response_type",
    "response_type": "response_type",
}
#: The same overrides by their query names, for URLs this driver signs itself.
_HMAC_OVERRIDES: Final = {
    name: ("response-content-type" if kind == "response_type" else "response-content-disposition")
    for name, kind in _RESPONSE_OVERRIDES.items()
}
_SIGNING_HELP: Final = (
    "Give options 'hmac_access_id' and 'hmac_secret' an HMAC key of a service account, or "
    "option 'credentials' a service-account key (a JSON file path or its dict); or, "
    "under workload identity or the metadata server, set 'iam_sign_blob' (and 'sa_email' "
    "if the credentials do not name their service account) to sign through the IAM "
    "signBlob API, one request per URL, with roles/iam.serviceAccountTokenCreator on that "
    "account; or set 'querystring_auth' to False for public, unsigned URLs."
)
_Mapper = Callable[[BaseException], StowageError | None]


@dataclass(frozen=True)
class GCSOptions(DriverOptions):
    """Configure the Google Cloud Storage driver (option names as in django-storages)."""

    bucket_name: str | None = option(None, doc="Bucket holding the files (required).")
    project_id: str | None = option(
        None,
        doc="Project billed for requests; defaults to the credentials' project.",
        env="GOOGLE_CLOUD_PROJECT",
    )
    credentials: CredentialsOption = option(
        None,
        secret=True,
        doc="Path of a credentials JSON file (service-account key …), its parsed content "
        "as a dict, or a google.auth Credentials object. Without it, Application Default "
        "Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server).",
    )
    anonymous: bool = option(
        False,
        doc="Send API requests without credentials: for emulators and public buckets. "
        "A service-account key in 'credentials' then only signs URLs.",
    )
    api_endpoint: str | None = option(
        None,
        doc="Base URL of the JSON API and of generated URLs, for an emulator "
        "(http://127.0.0.1:4443) or a private endpoint. Defaults to "
        "STORAGE_EMULATOR_HOST (then requests without credentials unless some are "
        "given), else https://storage.googleapis.com. django-storages' custom_endpoint, "
        "the host of generated URLs, is custom_domain.",
    )
    default_acl: str | None = option(
        None,
        doc="Predefined ACL given to new objects (publicRead, projectPrivate …); None "
        "leaves the bucket's default. Not for buckets with uniform bucket-level access.",
    )
    object_parameters: Mapping[str, Any] = option(
        default_factory=dict,
        doc="Properties given to every new object: cache_control, content_disposition, "
        "content_encoding, content_language, content_type, storage_class, metadata "
        "(a dict) and acl (a predefined ACL).",
    )
    gzip: bool = option(
        False, doc="Store bodies of the gzip_content_types gzip-compressed (Content-Encoding)."
    )
    gzip_content_types: tuple[str, ...] = option(
        _gzip.DEFAULT_TYPES, doc="Content types compressed when 'gzip' is on."
    )
    blob_chunk_size: int | None = option(
        None,
        doc="Bytes per request of resumable uploads and of streamed reads, a multiple of "
        "256 KiB (default 8 MiB); the memory one transfer holds.",
    )
    iam_sign_blob: bool = option(
        False,
        doc="Sign URLs through the IAM signBlob API (one request per URL) when the "
        "credentials hold no private key, as under workload identity.",
    )
    sa_email: str | None = option(
        None,
        doc="Service account that signs through signBlob; defaults to the credentials' own.",
    )
    hmac_access_id: str | None = option(
        None,
        doc="Access ID of an HMAC key (GOOG1…) of a service account: with hmac_secret, "
        "URLs are signed with it (GOOG4-HMAC-SHA256), far faster than with an RSA key.",
    )
    hmac_secret: str | None = option(
        None, secret=True, doc="Secret of the HMAC key named by hmac_access_id."
    )
    timeout: float = option(60.0, doc="Seconds to wait for each response of the service.")
    retry_timeout: float = option(
        120.0,
        doc="Seconds to keep retrying a request that failed transiently (connection "
        "errors, 408, 429, 5xx); 0 turns retries off.",
    )

    def __post_init__(self) -> None:
        if not self.bucket_name:
            raise ConfigurationError(
                "Option 'bucket_name' is required for Google Cloud Storage "
                "(or the GS_BUCKET_NAME setting)."
            )
        if self.api_endpoint is not None and not self.api_endpoint.startswith(
            ("http://", "https://")
        ):
            raise ConfigurationError(
                "Option 'api_endpoint' must be a URL starting with http:// or https://, "
                f"got {self.api_endpoint!r}."
            )
        chunk = self.blob_chunk_size
        if chunk is not None and (chunk <= 0 or chunk % _CHUNK_QUANTUM):
            raise ConfigurationError(
                f"Option 'blob_chunk_size' must be a positive multiple of 256 KiB "
                f"({_CHUNK_QUANTUM} bytes), got {chunk!r}."
            )
        if self.timeout <= 0:
            raise ConfigurationError(f"Option 'timeout' must be positive, got {self.timeout!r}.")
        if self.retry_timeout < 0:
            raise ConfigurationError(
                f"Option 'retry_timeout' must be 0 or more, got {self.retry_timeout!r}."
            )
        if self.default_acl is not None and self.default_acl not in _PREDEFINED_ACLS:
            raise ConfigurationError(
                f"Option 'default_acl' must be one of {', '.join(sorted(_PREDEFINED_ACLS))}; "
                f"got {self.default_acl!r}."
            )
        _check_object_parameters(self.object_parameters)
        _check_hmac_key(self.hmac_access_id, self.hmac_secret, iam_sign_blob=self.iam_sign_blob)
        value = self.credentials
        if value is not None and not isinstance(value, str | os.PathLike | Mapping):
            from google.auth.credentials import Credentials

            if not isinstance(value, Credentials):
                raise ConfigurationError(
                    "Option 'credentials' must be a path, a dict or a google.auth Credentials "
                    f"object; got {type(value).__name__}."
                )


def _check_hmac_key(access_id: str | None, secret: str | None, *, iam_sign_blob: bool) -> None:
    # Messages name the options, never their values: the secret stays out of logs.
    if (access_id is None) != (secret is None):
        given, missing = (
            ("hmac_access_id", "hmac_secret")
            if secret is None
            else ("hmac_secret", "hmac_access_id")
        )
        raise ConfigurationError(
            f"Option {given!r} needs {missing!r}: an HMAC key is its access ID and its "
            "secret; give both (or the GS_HMAC_ACCESS_ID and GS_HMAC_SECRET settings), or neither."
        )
    if access_id is None:
        return
    for name, value in (("hmac_access_id", access_id), ("hmac_secret", secret)):
        if not value:
            raise ConfigurationError(f"Option {name!r} must not be empty.")
    if iam_sign_blob:
        raise ConfigurationError(
            "Options 'iam_sign_blob' and 'hmac_access_id' both choose how URLs are signed; "
            "give one: an HMAC key signs locally, signBlob asks the IAM API for each URL."
        )


@functools.lru_cache(maxsize=16)
def _url_parts(base: str) -> tuple[str, str, str]:
    """Return the scheme, host and path (no trailing slash) of a base URL."""
    parts = urlsplit(base)
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def _check_object_parameters(parameters: Mapping[str, Any]) -> None:
    valid = sorted({*_TEXT_PARAMETERS, "metadata"})
    for name, value in parameters.items():
        if name == "metadata":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ConfigurationError(
                    "Option 'object_parameters': 'metadata' must be a dict of str to str."
                )
        elif name in _TEXT_PARAMETERS:
            if not isinstance(value, str):
                raise ConfigurationError(
                    f"Option 'object_parameters': {name!r} must be str, got {type(value).__name__}."
                )
        else:
            raise ConfigurationError(
                f"Option 'object_parameters' has an unknown key {name!r}. "
                f"Valid keys: {', '.join(valid)}."
            )
    acl = parameters.get("acl")
    if acl is not None and acl not in _PREDEFINED_ACLS:
        raise ConfigurationError(
            f"Option 'object_parameters': 'acl' must be one of "
            f"{', '.join(sorted(_PREDEFINED_ACLS))}; got {acl!r}."
        )


def _credentials_from_info(info: Any) -> tuple[Credentials, str | None]:
    """Build credentials from a key file's content, accepting only known kinds.

    google-auth's generic loaders are deprecated for accepting any kind of
    configuration (some run commands or fetch URLs); these three only sign or
    refresh tokens.
    """
    from google.auth import impersonated_credentials
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        credentials: Credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        return credentials, info.get("project_id")
    if kind == "authorized_user":
        credentials = user_credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
        return credentials, info.get("quota_project_id")
    if kind == "impersonated_service_account":
        credentials = impersonated_credentials.Credentials.from_impersonated_service_account_info(  # type: ignore[no-untyped-call]
            info
        )
        return credentials, None
    raise ConfigurationError(
        f"Option 'credentials' holds credentials of type {kind!r}; this option takes "
        "'service_account', 'authorized_user' or 'impersonated_service_account'. For other "
        "kinds (external_account …) pass a google.auth Credentials object, or leave the "
        "option unset and point GOOGLE_APPLICATION_CREDENTIALS at the file."
    )


def _mapper(what: str, *, bucket: str, creating: bool = False, reading: bool = True) -> _Mapper:
    """Return the translation of the client's errors for one operation, by :func:`_table`."""
    return lambda exc: _table(creating=creating, reading=reading).lookup(exc, what, bucket=bucket)


@functools.cache
def _table(*, creating: bool, reading: bool) -> ErrorTable:
    """Return what the client's errors become (loaded at the first error: the SDK is optional)."""
    import google.auth.exceptions
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.cloud.storage import exceptions as storage_exceptions  # type: ignore[import-untyped]

    table = ErrorTable(
        Rule(
            (api_exceptions.Forbidden, api_exceptions.Unauthorized),
            AccessDenied,
            "{what}: {exc.code} {exc.message}",
        ),
        Rule(
            (api_exceptions.TooManyRequests, api_exceptions.ServerError, api_exceptions.RetryError),
            ServiceUnavailable,
        ),
        Rule(api_exceptions.GoogleAPICallError, ServiceError, "{what}: {exc.code} {exc.message}"),
        Rule(requests.exceptions.Timeout, ServiceTimeout),
        Rule(requests.exceptions.ConnectionError, ServiceUnavailable),
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


class _UploadSource:
    """Give the client a caller's stream as it needs it: full reads and ``tell()``.

    The client expects ``read(n)`` to return ``n`` bytes unless the stream
    ended. Bytes read ahead to choose the upload method are served again
    first (the same object, no copy). An error raised by the caller's stream
    is remembered so it can propagate unchanged instead of looking like a
    service failure.
    """

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        # A file object returns a whole chunk in one read, copied once; other
        # readers (which may buffer and copy what they return) are asked for
        # less at a time, so their transient copies stay small.
        self._block = 64 * MiB if isinstance(stream, io.IOBase) else _READ_BLOCK
        self._pos = 0
        self._replay = b""
        self._ended = False
        self.error: BaseException | None = None

    def tell(self) -> int:
        """Return how many bytes the reader consumed."""
        return self._pos

    def unread(self, data: bytes) -> None:
        """Serve ``data``, the bytes last read, again before the rest of the stream."""
        if self._replay or len(data) > self._pos:
            raise io.UnsupportedOperation("only the last read can be served again")
        self._replay = data
        self._pos -= len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Stay where the stream is: a one-pass stream cannot move."""
        if whence == io.SEEK_SET and offset == self._pos:
            return offset
        raise io.UnsupportedOperation(f"cannot seek to {offset}: the stream is read once")

    def read(self, size: int = -1, /) -> bytes:
        """Return ``size`` bytes, fewer only at the end of the stream."""
        parts: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        if self._replay:
            take = self._replay if want >= len(self._replay) else self._replay[:want]
            self._replay = self._replay[len(take) :]
            parts.append(take)
            want -= len(take)
        while want > 0 and not self._ended:
            try:
                chunk = self._stream.read(min(want, self._block))
            except BaseException as exc:
                self.error = exc
                raise
            if not chunk:
                self._ended = True
                break
            parts.append(chunk)
            want -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(data)
        return data


def _timestamp(value: object) -> dt.datetime | None:
    """Parse an RFC 3339 time of the JSON API (Python 3.11 reads the "Z" suffix)."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


class GCSDriver(Driver[GCSOptions]):
    """Keep each key as an object in one Google Cloud Storage bucket."""

    options_class = GCSOptions
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SIGN,
            Capability.SIGN_CUSTOM_DOMAIN,
            Capability.PUBLIC_URL,
            Capability.SERVER_COPY,
            Capability.CREATED_TIME,
            Capability.OBJECT_PARAMETERS,
        }
    )
    max_key_bytes = 1024

    def __init__(self, options: GCSOptions) -> None:
        super().__init__(options)
        self._bucket_name: str = options.bucket_name or ""
        endpoint = options.api_endpoint
        self._emulator = False
        if endpoint is None and os.environ.get("STORAGE_EMULATOR_HOST"):
            endpoint = os.environ["STORAGE_EMULATOR_HOST"]
            if "://" not in endpoint:
                endpoint = f"http://{endpoint}"
            self._emulator = True
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._chunk = options.blob_chunk_size or _DEFAULT_CHUNK
        # The client library loads here, at the first use of the storage, not
        # when a storage is declared (models, settings): it takes a few 100 ms.
        try:
            from google.cloud.storage.retry import DEFAULT_RETRY  # type: ignore[import-untyped]
        except ImportError as exc:
            raise MissingDependency(
                "The 'gcs' storage driver needs the 'gcs' extra: "
                f"pip install 'django-stowage[gcs]' (missing module {exc.name!r})."
            ) from exc

        self._retry: Any = (
            DEFAULT_RETRY.with_timeout(options.retry_timeout) if options.retry_timeout else None
        )
        self._lock = threading.Lock()
        self._client: Any = None
        self._bucket: Any = None
        self._signer: Credentials | None = None

    # -- plumbing -----------------------------------------------------------------

    def _load_credentials(self) -> tuple[Credentials | None, str | None]:
        import google.auth.exceptions
        from google.auth.credentials import Credentials

        value = self.options.credentials
        if value is None:
            return None, None
        if isinstance(value, Credentials):
            return value, getattr(value, "project_id", None)
        try:
            if isinstance(value, Mapping):
                info = dict(value)
            else:
                with open(value, encoding="utf-8") as handle:
                    info = json.load(handle)
            return _credentials_from_info(info)
        except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as exc:
            # The message names the problem (a missing field, an unreadable
            # file), never the key material.
            raise ConfigurationError(
                f"Option 'credentials' could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc

    def _connect(self) -> Any:
        import google.auth
        import google.auth.exceptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[import-untyped]

        options = self.options
        given, project = self._load_credentials()
        if options.anonymous or (given is None and self._emulator):
            api_credentials: Credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        elif given is not None:
            api_credentials = given
        else:
            try:
                api_credentials, project = google.auth.default()
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise ConfigurationError(
                    "No Google Cloud credentials: set option 'credentials' (a service-account "
                    "key file or dict), GOOGLE_APPLICATION_CREDENTIALS, or run where "
                    "Application Default Credentials exist; or set 'anonymous' for an emulator."
                ) from exc
        if given is not None:
            self._signer = given
        elif not options.anonymous:
            self._signer = api_credentials
        client_options = {"api_endpoint": self._endpoint} if self._endpoint else None
        return storage.Client(
            project=options.project_id or project,
            credentials=api_credentials,
            client_options=client_options,
        )

    @property
    def bucket(self) -> Any:
        """Return the client's bucket object, creating the client on first use."""
        bucket = self._bucket
        if bucket is None:
            with self._lock:
                if self._bucket is None:
                    what = "connecting to Google Cloud Storage"
                    with translate(what, _mapper(what, bucket=self._bucket_name)):
                        self._client = self._connect()
                    self._bucket = self._client.bucket(self._bucket_name)
                bucket = self._bucket
        return bucket

    def close(self) -> None:
        """Close the client's HTTP connections; a later call opens new ones."""
        with self._lock:
            client, self._client, self._bucket = self._client, None, None
        if client is not None:
            client.close()

    def _what(self, verb: str, key: str) -> str:
        return f"{verb} {key!r} in bucket {self._bucket_name!r}"

    def _info(self, blob: Any, *, size: int | None = None) -> ObjectInfo:
        # The resource dict the client keeps; its own datetime properties parse
        # with strptime, which made listing a thousand objects cost 100 ms.
        resource: dict[str, Any] = blob._properties
        metadata = dict(resource.get("metadata") or {})
        plain = metadata.pop(_gzip.PLAIN_SIZE_KEY, None)
        if size is None:
            gzipped = resource.get("contentEncoding") == "gzip"
            known = plain if gzipped and isinstance(plain, str) and plain.isdigit() else None
            size = int(known or resource.get("size") or 0)
        return ObjectInfo(
            key=blob.name,
            size=size,
            modified=_timestamp(resource.get("updated")),
            etag=resource.get("etag"),
            content_type=resource.get("contentType"),
            cache_control=resource.get("cacheControl"),
            created=_timestamp(resource.get("timeCreated")),
            metadata=metadata,
        )

    def _metadata(self, key: str) -> Any:
        if not key:
            raise NotFound("The bucket root is not an object.")
        what = self._what("inspecting", key)
        with translate(what, _mapper(what, bucket=self._bucket_name)):
            blob = self.bucket.get_blob(key, timeout=self.options.timeout, retry=self._retry)
        if blob is None:
            raise NotFound(f"{what}: no such object.")
        return blob

    def _plain_size(self, blob: Any) -> int:
        """Return the size a reader gets: the original size of a gzip-compressed object."""
        if blob.content_encoding != "gzip":
            return int(blob.size or 0)
        known = _gzip.plain_size(blob.metadata or {})
        if known is not None:
            return known
        stored = int(blob.size or 0)
        if stored < 18:
            return 0
        # Written by another client: the gzip trailer holds the size modulo 2**32.
        trailer = self._download(blob, stored - 4, stored)
        return int.from_bytes(trailer, "little")

    def _download(self, blob: Any, start: int, stop: int) -> bytes:
        """Fetch the stored bytes [start, stop) of ``blob``'s generation."""
        what = self._what("reading", blob.name)
        with translate(what, _mapper(what, bucket=self._bucket_name)):
            data: bytes = blob.download_as_bytes(
                start=start,
                end=stop - 1,
                # Stored gzip bytes are inflated here, by range; anything else
                # the client may decode (a response compressed on the way).
                raw_download=blob.content_encoding == "gzip",
                checksum=None,
                if_generation_match=blob.generation,
                timeout=self.options.timeout,
                retry=self._retry,
            )
        return data

    # -- required -----------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> ObjectInfo:
        """Upload ``stream`` in one request or, past 8 MiB, in resumable chunks."""
        options = self.options
        params = options.object_parameters
        if object_parameters is not None:
            _check_object_parameters(object_parameters)
            params = object_parameters
        blob = self.bucket.blob(key, chunk_size=self._chunk)
        # The configured content type wins over the name-based guess, as in
        # django-storages; a per-call cache_control or metadata wins over the
        # configured defaults because it is the more specific.
        content_type = params.get("content_type") or content_type
        properties = {
            "cache_control": cache_control or params.get("cache_control"),
            "content_disposition": params.get("content_disposition"),
            "content_language": params.get("content_language"),
            "storage_class": params.get("storage_class"),
        }
        user_metadata = {**params.get("metadata", {}), **(metadata or {})}
        encoding = params.get("content_encoding")
        base_type = (content_type or "").split(";", 1)[0].strip().lower()
        compress = options.gzip and encoding is None and base_type in options.gzip_content_types
        properties["content_encoding"] = "gzip" if compress else encoding
        for name, value in properties.items():
            if value is not None:
                setattr(blob, name, value)
        source = _UploadSource(stream)
        what = self._what("writing", key)
        mapper = _mapper(what, bucket=self._bucket_name, creating=if_absent, reading=False)
        spool = None
        try:
            if compress:
                spool, plain_size = _gzip.compress(source)
                user_metadata[_gzip.PLAIN_SIZE_KEY] = str(plain_size)
                body: Any = spool
                body_size: int | None = spool.seek(0, io.SEEK_END)
                spool.seek(0)
            else:
                head = source.read(_MULTIPART_LIMIT)
                if len(head) < _MULTIPART_LIMIT:
                    body, body_size = io.BytesIO(head), len(head)
                else:
                    # Length unknown from here on: a resumable upload, whose first
                    # chunk replays the bytes already read.
                    source.unread(head)
                    del head  # the source holds it until sent, and no longer
                    body, body_size = source, None
            resumable = body_size is None or body_size > _MULTIPART_LIMIT
            if if_absent and resumable and self._is_object(key):
                # ifGenerationMatch=0 still settles races; this saves sending a
                # large body only to have it refused when the upload completes.
                raise AlreadyExists(f"{what}: the name is already taken.")
            if user_metadata:
                blob.metadata = user_metadata
            blob.upload_from_file(
                body,
                size=body_size,
                content_type=content_type,
                predefined_acl=params.get("acl") or options.default_acl,
                if_generation_match=0 if if_absent else None,
                timeout=options.timeout,
                retry=self._retry,
            )
        except Exception as exc:
            if source.error is not None and exc is source.error:
                raise
            with translate(what, mapper):
                raise
        finally:
            if spool is not None:
                spool.close()
        plain = _gzip.plain_size(blob.metadata or {}) if compress else None
        return self._info(blob, size=plain)

    def _is_object(self, key: str) -> bool:
        try:
            self._metadata(key)
        except NotFound:
            return False
        return True

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Read ``key`` with ranged requests, each at most ``blob_chunk_size`` bytes."""
        if end is not None and 0 < end - start <= self._chunk and key:
            quick = self._get_small(key, start, end)
            if quick is not None:
                return quick
        blob = self._metadata(key)
        return self._stream(blob, start, end)

    def _stream(self, blob: Any, start: int, end: int | None) -> Download:
        size = self._plain_size(blob)
        info = self._info(blob, size=size)
        stop = size if end is None else min(end, size)
        if start >= stop:
            return Download(info, iter(()))
        if blob.content_encoding == "gzip":
            chunks = self._gunzip_chunks(blob, start, stop)
        else:
            chunks = self._chunks(blob, start, stop)
        return Download(info, chunks, chunks.close)

    def _get_small(self, key: str, start: int, end: int) -> Download | None:
        """Read a range in one request, then the metadata only if the object goes on.

        Return None when the range must be read the long way: it starts past
        the end, the object is stored compressed, or it was replaced between
        the two requests.
        """
        blob = self.bucket.blob(key)
        what = self._what("reading", key)
        try:
            with translate(what, _mapper(what, bucket=self._bucket_name)):
                data: bytes = blob.download_as_bytes(
                    start=start,
                    end=end - 1,
                    raw_download=True,
                    checksum=None,
                    timeout=self.options.timeout,
                    retry=self._retry,
                )
        except ServiceError as exc:
            from google.api_core.exceptions import RequestRangeNotSatisfiable

            if isinstance(exc.__cause__, RequestRangeNotSatisfiable):
                return None
            raise
        if blob.content_encoding == "gzip":
            return None
        chunks = iter((data,)) if data else iter(())
        if len(data) < end - start:
            # The object ends inside the range: that tells its size.
            info = ObjectInfo(
                key=key,
                size=start + len(data),
                etag=(blob.etag or "").strip('"') or None,
                content_type=blob.content_type,
                cache_control=blob.cache_control,
            )
            return Download(info, chunks)
        meta = self._metadata(key)
        if blob.generation is not None and meta.generation != blob.generation:
            return None
        return Download(self._info(meta), chunks)

    def _chunks(self, blob: Any, start: int, stop: int) -> Generator[bytes, None, None]:
        position = start
        while position < stop:
            want = min(self._chunk, stop - position)
            data = self._download(blob, position, position + want)
            if data:
                yield data
            if len(data) < want:
                return  # cut short: the reader sees the missing bytes and resumes
            position += want

    def _gunzip_chunks(self, blob: Any, start: int, stop: int) -> Generator[bytes, None, None]:
        return _gzip.inflate(self._chunks(blob, 0, int(blob.size or 0)), start, stop)

    def head(self, key: str) -> ObjectInfo:
        """Describe the object at ``key`` from its metadata."""
        blob = self._metadata(key)
        return self._info(blob, size=self._plain_size(blob))

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        from google.api_core.exceptions import NotFound as Missing

        what = self._what("deleting", key)
        mapper = _mapper(what, bucket=self._bucket_name)
        with translate(what, mapper), contextlib.suppress(Missing):
            self.bucket.delete_blob(key, timeout=self.options.timeout, retry=self._retry)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List one directory level (delimiter "/") or everything below, page by page."""
        base = f"{prefix}/" if prefix else ""
        what = f"listing {prefix or '/'!r} in bucket {self._bucket_name!r}"
        mapper = _mapper(what, bucket=self._bucket_name, reading=False)
        with translate(what, mapper):
            pages = self.bucket.list_blobs(
                prefix=base,
                delimiter=None if recursive else "/",
                timeout=self.options.timeout,
                retry=self._retry,
            ).pages
        while True:
            with translate(what, mapper):
                page = next(pages, None)
            if page is None:
                return
            for blob in page:
                if blob.name == base:
                    continue  # a "folder" placeholder some tools create, not a file
                yield self._info(blob)
            for name in sorted(page.prefixes):
                yield Prefix(name.rstrip("/"))

    # -- with defaults ------------------------------------------------------------

    def is_dir(self, key: str) -> bool:
        """Tell whether any object lies below ``key/``."""
        what = f"listing {key or '/'!r} in bucket {self._bucket_name!r}"
        with translate(what, _mapper(what, bucket=self._bucket_name, reading=False)):
            found = self.bucket.list_blobs(
                prefix=f"{key}/" if key else "",
                max_results=1,
                timeout=self.options.timeout,
                retry=self._retry,
            )
            return any(True for _ in found)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy on the service with the rewrite API, in as many calls as it asks."""
        return self._rewrite(src, dst, if_absent=False)

    def copy_new(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` only if ``dst`` is free (``ifGenerationMatch=0``)."""
        self._rewrite(src, dst, if_absent=True)

    def _rewrite(self, src: str, dst: str, *, if_absent: bool) -> ObjectInfo:
        bucket = self.bucket
        source, target = bucket.blob(src), bucket.blob(dst)
        what = self._what("copying", src)
        token = None
        with translate(what, _mapper(what, bucket=self._bucket_name, creating=if_absent)):
            while True:
                token, _, _ = target.rewrite(
                    source,
                    token=token,
                    if_generation_match=0 if if_absent else None,
                    timeout=self.options.timeout,
                    retry=self._retry,
                )
                if token is None:
                    break
        return self._info(target, size=self._plain_size(target))

    # -- for direct uploads -------------------------------------------------------

    def start_resumable_upload(
        self, key: str, *, content_type: str, size: int, origin: str | None
    ) -> str:
        """Start a resumable upload session for ``key``; return its session URI.

        The service is told the Content-Type and the size
        (``X-Upload-Content-Type``, ``X-Upload-Content-Length``) and, with
        ``origin``, the page origin that may PUT to the session from a browser.
        """
        what = self._what("starting an upload to", key)
        with translate(what, _mapper(what, bucket=self._bucket_name, reading=False)):
            uri: str = self.bucket.blob(key).create_resumable_upload_session(
                content_type=content_type,
                size=size,
                origin=origin,
                checksum=None,
                timeout=self.options.timeout,
                retry=self._retry,
            )
        return uri

    def cors(self) -> Sequence[dict[str, Any]]:
        """Return the bucket's CORS rules (its ``cors`` metadata)."""
        what = f"reading the CORS rules of bucket {self._bucket_name!r}"
        bucket = self._own_bucket()
        with translate(what, _mapper(what, bucket=self._bucket_name, reading=False)):
            bucket.reload(timeout=self.options.timeout, retry=self._retry)
        return [dict(rule) for rule in bucket.cors or []]

    def set_cors(self, rules: Sequence[Mapping[str, Any]]) -> None:
        """Replace the bucket's CORS rules with ``rules`` (a PATCH of its metadata)."""
        what = f"setting the CORS rules of bucket {self._bucket_name!r}"
        bucket = self._own_bucket()
        bucket.cors = [dict(rule) for rule in rules]
        with translate(what, _mapper(what, bucket=self._bucket_name, reading=False)):
            bucket.patch(timeout=self.options.timeout, retry=self._retry)

    def _own_bucket(self) -> Any:
        """Return a bucket object of its own, whose metadata may be loaded and changed."""
        self.bucket  # noqa: B018 - creates the client
        return self._client.bucket(self._bucket_name)

    # -- by capability ----------------------------------------------------------

    def _signing_credentials(self) -> Credentials:
        self.bucket  # noqa: B018 - loads the credentials with the client
        signer = self._signer
        if signer is not None and (self.options.iam_sign_blob or hasattr(signer, "sign_bytes")):
            return signer
        held = (
            f"the {type(signer).__name__} credentials in use hold none"
            if signer is not None
            else "requests are anonymous"
        )
        raise UnsupportedOperation(
            f"Signing Google Cloud Storage URLs needs a private key, and {held}. {_SIGNING_HELP}"
        )

    def _iam_arguments(self, credentials: Credentials) -> dict[str, str]:
        from google.auth.transport.requests import Request as AuthRequest

        with self._lock:
            if not credentials.valid:
                credentials.refresh(AuthRequest())  # type: ignore[no-untyped-call]
        email = self.options.sa_email or getattr(credentials, "service_account_email", None)
        if not email or email == "default":
            raise ConfigurationError(
                "Option 'iam_sign_blob' needs the signing service account: set 'sa_email'."
            )
        return {"service_account_email": email, "access_token": str(credentials.token)}

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        """Return a V4 signed URL, on ``domain`` (a bucket-bound host) when given."""
        seconds = signed_seconds(expires, "A GCS signed URL")
        if self.options.hmac_access_id is not None:
            return self._sign_with_hmac(key, method.upper(), seconds, parameters, domain)
        credentials = self._signing_credentials()
        arguments: dict[str, Any] = {
            "expiration": dt.timedelta(seconds=seconds),
            "method": method.upper(),
            "version": "v4",
        }
        query: dict[str, str] = {}
        for name, value in (parameters or {}).items():
            if name in _RESPONSE_OVERRIDES:
                arguments[_RESPONSE_OVERRIDES[name]] = value
            else:
                query[name] = value
        if query:
            arguments["query_parameters"] = query
        if domain is not None:
            arguments["bucket_bound_hostname"] = domain
        else:
            arguments["api_access_endpoint"] = self._endpoint or _DEFAULT_ENDPOINT
        what = self._what("signing", key)
        with translate(what, _mapper(what, bucket=self._bucket_name)):
            if self.options.iam_sign_blob:
                arguments.update(self._iam_arguments(credentials))
            else:
                arguments["credentials"] = credentials
            url: str = self.bucket.blob(key).generate_signed_url(**arguments)
        return url

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
        options = self.options
        access_id, secret = options.hmac_access_id, options.hmac_secret
        if not access_id or not secret:
            # A storage unpickled in another process gets secrets back from settings only.
            raise ConfigurationError(
                "Option 'hmac_access_id' is set but 'hmac_secret' is not: give it in OPTIONS "
                "or the GS_HMAC_SECRET setting (a storage unpickled in another process reads "
                "its secrets from settings)."
            )
        if domain is None:
            scheme, host, base = _url_parts(self._endpoint or _DEFAULT_ENDPOINT)
            path = f"{base}/{self._bucket_name}/{key}"
        else:
            scheme, host, base = _url_parts(domain)
            path = f"{base}/{key}"
        return _sigv4.presign(
            method=method,
            scheme=scheme,
            host=host,
            path=path,
            region="auto",
            access_key=access_id,
            secret_key=secret,
            session_token=None,
            expires=seconds,
            parameters=parameters,
            dialect=_sigv4.GOOG4,
            renames=_HMAC_OVERRIDES,
        )

    def public_url(self, key: str) -> str:
        """Return the object's unsigned URL (readable if the object is public)."""
        base = self._endpoint or _DEFAULT_ENDPOINT
        return f"{base}/{self._bucket_name}/{quote(key, safe=URL_SAFE)}"
