"""Configure the S3 driver: :class:`S3Options`, in django-storages' names where alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from stowage.config import option
from stowage.drivers.base import MiB
from stowage.drivers.options import GzipOptions, ListingOptions, ObjectStoreOptions
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["PARAMETER_HEADERS", "S3Options", "proxy_for"]

#: object_parameters keys and the attribute each becomes.
PARAMETER_HEADERS = {
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "ContentType": "Content-Type",
    "StorageClass": "Storage-Class",
}


@record
class S3Options(ObjectStoreOptions, GzipOptions, ListingOptions):
    """Options of the S3 driver (django-storages' names where the meaning is the same)."""

    bucket_name: str = option("", doc="The bucket.")
    region_name: str = option("us-east-1", doc="The bucket's region.", env="AWS_DEFAULT_REGION")
    endpoint_url: str | None = option(
        None, doc="Endpoint of an S3-compatible service (MinIO, R2, Ceph, Spaces…)."
    )
    access_key: str | None = option(
        None, doc="Access key id (else the environment and instance roles).", secret=True
    )
    secret_key: str | None = option(None, doc="Secret access key.", secret=True)
    session_token: str | None = option(
        None, doc="Session token of temporary credentials.", secret=True
    )
    addressing_style: Literal["auto", "path", "virtual"] = option(
        "auto", doc="Path-style or virtual-hosted URLs; auto is path-style with endpoint_url."
    )
    object_parameters: dict[str, Any] = option(
        default_factory=dict,
        doc="Headers and metadata for every object: CacheControl, ContentDisposition, "
        "ContentEncoding, ContentLanguage, ContentType, StorageClass, Metadata. A large "
        "file saved under a new name where creates are staged (see the S3 page) lands in "
        "the bucket's default storage class (a lifecycle rule can move it).",
    )
    server_side_encryption: str | None = option(
        None, doc="Server-side encryption: AES256, aws:kms or aws:kms:dsse."
    )
    sse_kms_key_id: str | None = option(None, doc="KMS key for aws:kms encryption.")
    default_acl: str | None = option(
        None, doc="Only None or 'private': grant public access with a bucket policy instead."
    )
    proxies: dict[str, str] = option(
        default_factory=dict,
        doc="Proxy by URL scheme, as botocore takes them ({'https': 'http://proxy:3128'}); "
        "the endpoint's scheme picks one. HTTPS_PROXY, HTTP_PROXY and NO_PROXY in the "
        "environment work too.",
    )
    profile: str | None = option(
        None,
        doc="Named profile of the shared AWS files (~/.aws/credentials, ~/.aws/config) to "
        "take the keys from, when access_key and secret_key are not given.",
        env="AWS_PROFILE",
    )
    checksum_algorithm: Literal["auto", "crc32", "sha256", "crc64nvme"] | None = option(
        "auto",
        doc="Additional checksum sent with uploads, as newer AWS SDKs send CRC32 by default. "
        "'auto': a CRC32 of each part of a multipart upload where the server takes it "
        "(Amazon S3 does; another endpoint is probed once per process); 'crc32', 'sha256', "
        "'crc64nvme': with every upload; None: none.",
    )
    multipart_chunksize: int = option(
        8 * MiB,
        doc="Size of each uploaded part; larger for a body that would need over 10,000 parts.",
    )
    sign_custom_domain: bool = option(
        False,
        doc="Sign URLs on custom_domain itself (S3-compatible CDNs such as R2, Spaces or "
        "B2 that check S3 signatures on their own domain, the bucket implied by it).",
    )
    conditional_writes: Literal["auto", "require", "off"] = option(
        "auto",
        doc="Atomic create with If-None-Match: *. 'auto' probes the endpoint once per "
        "process (Amazon S3 is trusted) and falls back to a best-effort create, with a "
        "warning, where the server ignores the header; 'require' refuses to save on such "
        "a server; 'off' never sends it (best effort always).",
    )

    cloudfront_key_id: str | None = option(
        None, doc="CloudFront key pair id: with cloudfront_key, custom_domain URLs are signed."
    )
    cloudfront_key: str | None = option(
        None,
        doc="CloudFront private key (PEM text or the path of a PEM file), extra 'cloudfront'.",
        secret=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.cloudfront_key_id) != bool(self.cloudfront_key):
            raise ConfigurationError(
                "Options 'cloudfront_key_id' and 'cloudfront_key' go together: give both or none."
            )
        if self.cloudfront_key and self.sign_custom_domain:
            raise ConfigurationError(
                "Options 'cloudfront_key' and 'sign_custom_domain' both sign custom_domain URLs "
                "(CloudFront or S3 signatures): choose one."
            )
        if self.cloudfront_key_id and self.cloudfront_key:
            from stowage.drivers._cloudfront import CloudFrontSigner

            CloudFrontSigner(self.cloudfront_key_id, self.cloudfront_key)  # fails early if bad
        if self.default_acl not in (None, "private"):
            raise ConfigurationError(
                f"Option 'default_acl'={self.default_acl!r} is not supported: S3 object ACLs "
                "are disabled on new buckets and ignored by most S3-compatible services. Make "
                "objects public with a bucket policy and set querystring_auth=False."
            )
        unknown = set(self.object_parameters) - set(PARAMETER_HEADERS) - {"Metadata"}
        if unknown:
            raise ConfigurationError(
                f"Option 'object_parameters' has unsupported keys {sorted(unknown)}; "
                f"valid: {[*sorted(PARAMETER_HEADERS), 'Metadata']}."
            )
        if self.multipart_chunksize < 5 * MiB:
            raise ConfigurationError("Option 'multipart_chunksize' must be at least 5 MiB.")


def proxy_for(proxies: Mapping[str, str], scheme: str) -> str | None:
    """Return the proxy botocore would use for ``scheme`` from ``proxies``, as a URL."""
    proxy = proxies.get(scheme) or proxies.get(f"{scheme}://") or None
    if proxy is None:
        unknown = set(proxies) - {"http", "https", "http://", "https://"}
        if unknown:
            raise ConfigurationError(
                f"Option 'proxies' has keys {sorted(unknown)}; use 'http' and 'https'."
            )
        return None
    return proxy if "://" in proxy else f"http://{proxy}"
