"""Read and check the Google Cloud Storage driver's options (django-storages' names).

Checking happens when a storage is declared, so the client library must not
load here: a ``Credentials`` object given as an option is checked by
importing google.auth only when one is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from stowage.config import option
from stowage.drivers.base import MiB
from stowage.drivers.options import GzipOptions, ListingOptions, NetworkOptions
from stowage.exceptions import ConfigurationError
from stowage.records import record

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    #: What the 'credentials' option accepts.
    CredentialsOption = str | os.PathLike[str] | Mapping[str, Any] | Credentials | None
else:
    # Checked in GCSOptions.__post_init__: naming Credentials here would import
    # google.auth whenever a storage is declared, long before any request.
    CredentialsOption = Any

__all__ = ["CHUNK_QUANTUM", "DEFAULT_CHUNK", "GCSOptions", "check_object_parameters"]

#: Resumable chunks must be multiples of this (the service's rule).
CHUNK_QUANTUM: Final = 256 * 1024
#: Bytes per request of resumable uploads and streamed reads, unless configured.
DEFAULT_CHUNK: Final = 8 * MiB
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


@record
class GCSOptions(NetworkOptions, GzipOptions, ListingOptions):
    """Configure the Google Cloud Storage driver (option names as in django-storages)."""

    bucket_name: str | None = option(None, doc="Bucket holding the files (required).")
    project_id: str | None = option(
        None,
        doc="The project, as django-storages' GS_PROJECT_ID. Object requests name none: "
        "the bucket's project is billed (requester-pays buckets are not supported).",
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
    blob_chunk_size: int | None = option(
        None,
        doc="Bytes per request of chunked resumable uploads (a body of unknown size, or "
        "one that cannot seek) and of streamed reads, a multiple of 256 KiB (default "
        "8 MiB); the memory one transfer holds.",
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
        doc="Seconds after a request's first try past which no retry starts, for a request "
        "that failed transiently (connection errors, 408, 429, 5xx) and is safe to repeat; "
        "0 turns retries off.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
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
        if chunk is not None and (chunk <= 0 or chunk % CHUNK_QUANTUM):
            raise ConfigurationError(
                f"Option 'blob_chunk_size' must be a positive multiple of 256 KiB "
                f"({CHUNK_QUANTUM} bytes), got {chunk!r}."
            )
        if self.retry_timeout < 0:
            raise ConfigurationError(
                f"Option 'retry_timeout' must be 0 or more, got {self.retry_timeout!r}."
            )
        if self.default_acl is not None and self.default_acl not in _PREDEFINED_ACLS:
            raise ConfigurationError(
                f"Option 'default_acl' must be one of {', '.join(sorted(_PREDEFINED_ACLS))}; "
                f"got {self.default_acl!r}."
            )
        check_object_parameters(self.object_parameters)
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


def check_object_parameters(parameters: Mapping[str, Any]) -> None:
    """Refuse object parameters the driver does not know or whose values are of the wrong kind."""
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
