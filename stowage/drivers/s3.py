"""Store objects in Amazon S3 or an S3-compatible service, on obstore.

Reads, writes, listings and copies are :class:`~stowage.drivers._obstore.ObstoreDriver`'s.
Atomic create is a PUT with ``If-None-Match: *``; a large one is staged and
copied into place with S3's conditional multipart copy, then copied once
more onto itself because a multipart copy drops the content headers (objects
over 5 GiB keep S3's defaults).

Conditional writes (option ``conditional_writes``): some S3-compatible
servers ignore ``If-None-Match: *`` and overwrite. In ``"auto"`` mode the
driver finds out once per endpoint and bucket in each process, with a probe
object under ``.stowage-uploads/`` created twice (the second create must be
refused) and then deleted; the answer is kept in a module-level cache. Amazon
S3 itself (no ``endpoint_url``) honours the header and is not probed. Where
the header is ignored, the driver no longer declares ``ATOMIC_CREATE`` and
creates take the best-effort path of
:class:`~stowage.drivers._obstore.ObstoreDriver` (staged upload, one last
check, unconditional copy), small and large bodies alike, with one warning
on the ``stowage.s3`` logger. ``"require"`` refuses to save on such a server;
``"off"`` never sends the header.

When the probe runs: the adapter plans a save by asking whether
``ATOMIC_CREATE`` is in ``capabilities``, so that answer must be settled
first. Until the probe has run, ``capabilities`` is a set whose membership
test for ``ATOMIC_CREATE`` alone runs the probe; every other question
(``SIGN`` for URLs, ``PUBLIC_URL`` for system checks) is answered without
I/O, and iterating the set lists only what is known without it. A save
therefore probes just before its first create, and ``manage.py check`` or
``url()`` never write to the bucket. The async twins probe on a worker thread.

URLs: presigned with our own SigV4 signer (response-header overrides,
uploads with ``method="PUT"``, browser POST forms, and signing on a custom
domain for S3-compatible CDNs), or public (path- or virtual-hosted style).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

import obstore
from obstore.store import S3Store

from stowage.config import option
from stowage.drivers import _gzip, _sigv4
from stowage.drivers._aws_credentials import CredentialChain
from stowage.drivers._obstore import (
    UPLOADS_PREFIX,
    ObstoreDriver,
    map_error,
    read_ca_bundle,
    retry_config,
)
from stowage.drivers.base import (
    URL_SAFE,
    AsyncDownload,
    Capability,
    Download,
    Driver,
    MiB,
    ObjectInfo,
    Readable,
    in_thread,
)
from stowage.drivers.options import ObjectStoreOptions
from stowage.exceptions import (
    AlreadyExists,
    ConfigurationError,
    StowageError,
    UnsupportedOperation,
    translate,
)

if TYPE_CHECKING:
    from stowage.drivers._cloudfront import CloudFrontSigner

__all__ = ["S3Driver", "S3Options"]


logger = logging.getLogger("stowage.s3")

#: Whether each (endpoint, bucket) honours ``If-None-Match: *``, as probed by this process.
_CONDITIONAL_WRITES: dict[tuple[str, str], bool] = {}
#: The (endpoint, bucket) pairs whose best-effort fallback was already logged.
_WARNED: set[tuple[str, str]] = set()
#: Held while probing, so concurrent first saves probe once.
_PROBE_LOCK = threading.Lock()

#: object_parameters keys and the attribute each becomes.
_HEADERS = {
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "ContentType": "Content-Type",
    "StorageClass": "Storage-Class",
}


@dataclass(frozen=True)
class S3Options(ObjectStoreOptions):
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
        "file saved under a new name is staged and copied into place, and lands in the "
        "bucket's default storage class (a lifecycle rule can move it).",
    )
    gzip: bool = option(
        False, doc="Store bodies of the gzip_content_types gzip-compressed (Content-Encoding)."
    )
    gzip_content_types: tuple[str, ...] = option(
        _gzip.DEFAULT_TYPES, doc="Content types compressed when 'gzip' is on."
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
    checksum_algorithm: Literal["sha256", "crc64nvme"] | None = option(
        None,
        doc="Send this additional checksum with every upload, as newer AWS SDKs do by "
        "default. Off by default: several S3-compatible services reject such headers.",
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
        unknown = set(self.object_parameters) - set(_HEADERS) - {"Metadata"}
        if unknown:
            raise ConfigurationError(
                f"Option 'object_parameters' has unsupported keys {sorted(unknown)}; "
                f"valid: {[*sorted(_HEADERS), 'Metadata']}."
            )
        if self.multipart_chunksize < 5 * MiB:
            raise ConfigurationError("Option 'multipart_chunksize' must be at least 5 MiB.")


class S3Driver(ObstoreDriver[S3Options]):
    """Move bytes to and from one S3 bucket."""

    options_class = S3Options
    _class_capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SIGN,
            Capability.PUBLIC_URL,
            Capability.SERVER_COPY,
            Capability.OBJECT_PARAMETERS,
        }
    )
    native_async = True
    parameter_headers = _HEADERS
    metadata_parameter = "Metadata"

    @property
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        """Say what this bucket's configuration allows (custom-domain signing is opt-in).

        ``ATOMIC_CREATE`` depends on ``conditional_writes`` and, in ``"auto"``
        mode, on the probe, which asking for it runs (see the module docstring).
        """
        caps = type(self)._class_capabilities
        signs_domain = self.options.sign_custom_domain or self._cloudfront is not None
        if signs_domain:
            caps = caps | {Capability.SIGN_CUSTOM_DOMAIN}
        mode = self.options.conditional_writes
        if mode == "off":
            return caps - {Capability.ATOMIC_CREATE}
        atomic = self.conditional_writes_honoured()
        # "require" promises atomic creates: a server that ignores the header fails the put.
        if mode == "require" or atomic:
            return caps
        caps = caps - {Capability.ATOMIC_CREATE}
        return caps if atomic is False else _UnsettledCapabilities(caps, self._creates_atomically)

    # -- conditional writes -------------------------------------------------------------

    @property
    def _conditional_key(self) -> tuple[str, str]:
        endpoint = (self.options.endpoint_url or f"{self._scheme}://{self._host}").rstrip("/")
        return endpoint, self.options.bucket_name

    def conditional_writes_honoured(self) -> bool | None:
        """Tell, without I/O, whether the server honours ``If-None-Match: *``.

        None while unknown (not probed yet in this process). Amazon S3 itself
        (no ``endpoint_url``) honours it. ``conditional_writes="off"`` does
        not change the answer: it says what the server does, not what the
        driver sends.
        """
        if not self.options.endpoint_url:
            return True
        return _CONDITIONAL_WRITES.get(self._conditional_key)

    def probe_conditional_writes(self) -> bool:
        """Find out whether the server honours ``If-None-Match: *`` (cached per process).

        Creates a probe object under ``.stowage-uploads/`` twice, expecting
        the second create to be refused, then deletes it. Runs once per
        endpoint and bucket; later calls read the cache.
        """
        known = self.conditional_writes_honoured()
        if known is not None:
            return known
        with _PROBE_LOCK:
            known = self.conditional_writes_honoured()
            if known is None:
                known = self._probe()
                _CONDITIONAL_WRITES[self._conditional_key] = known
        return known

    def _probe(self) -> bool:
        endpoint, bucket = self._conditional_key
        key = f"{UPLOADS_PREFIX}/conditional-write-probe-{secrets.token_hex(8)}"
        what = f"probing conditional writes on {endpoint} (bucket {bucket!r})"
        try:
            with translate(what, map_error):
                obstore.put(self.store, key, b"", mode="create", use_multipart=False)
            try:
                with translate(what, map_error):
                    obstore.put(self.store, key, b"", mode="create", use_multipart=False)
            except AlreadyExists:
                honoured = True
            except BaseException:
                # The failure matters more than a leftover under the hidden prefix.
                with contextlib.suppress(Exception):
                    obstore.delete(self.store, key)
                raise
            else:
                honoured = False
            with translate(what, map_error):
                obstore.delete(self.store, key)
        except StowageError as exc:
            raise type(exc)(
                f"{exc} (stowage checks once whether the server honours If-None-Match: *, "
                f"which needs writes under {UPLOADS_PREFIX}/; allow them, or set option "
                "conditional_writes='off' to skip the check and save by best effort)"
            ) from exc
        return honoured

    def _creates_atomically(self) -> bool:
        """Tell whether a create can rely on ``If-None-Match: *`` here (probing once)."""
        mode = self.options.conditional_writes
        if mode == "off":
            return False
        if self.probe_conditional_writes():
            return True
        endpoint, bucket = self._conditional_key
        if mode == "require":
            raise ConfigurationError(
                f"Option 'conditional_writes'='require': the S3 server at {endpoint} ignores "
                f"If-None-Match: * on bucket {bucket!r}, so a save could overwrite another "
                "file. Upgrade the server to one that honours conditional writes, or set "
                "conditional_writes='auto' to accept a best-effort create (checked just "
                "before it commits)."
            )
        with _PROBE_LOCK:
            first = self._conditional_key not in _WARNED
            _WARNED.add(self._conditional_key)
        if first:
            logger.warning(
                "The S3 server at %s ignores If-None-Match: * on bucket %r: saves use a "
                "best-effort create (checked just before it commits), which two "
                "simultaneous saves of one name can still race. Set conditional_writes="
                "'off' to accept this without the probe, or 'require' to refuse it.",
                endpoint,
                bucket,
            )
        return False

    async def _acreates_atomically(self) -> bool:
        """Do :meth:`_creates_atomically`; the probe, when still due, runs on a worker thread."""
        if self.options.conditional_writes != "off" and self.conditional_writes_honoured() is None:
            return await in_thread(self._creates_atomically)
        return self._creates_atomically()

    def __init__(self, options: S3Options) -> None:
        super().__init__(options)
        if not options.bucket_name:
            raise ConfigurationError(
                "S3 storage needs 'bucket_name' (OPTIONS or AWS_STORAGE_BUCKET_NAME)."
            )
        endpoint = options.endpoint_url
        path_style = options.addressing_style == "path" or (
            options.addressing_style == "auto" and endpoint is not None
        )
        #: An endpoint's own path ("https://example.com/s3"): obstore keeps it, so URLs do.
        self._base_path = ""
        if endpoint:
            parts = urlsplit(endpoint)
            self._scheme, self._host = parts.scheme or "https", parts.netloc
            self._base_path = parts.path.rstrip("/")
        elif path_style:
            self._scheme, self._host = "https", f"s3.{options.region_name}.amazonaws.com"
        else:
            self._scheme = "https"
            self._host = f"{options.bucket_name}.s3.{options.region_name}.amazonaws.com"
        self._path_style = path_style
        # Without a static key pair, one chain finds the keys (environment,
        # profile, web identity, container, instance) for requests and URLs alike.
        self._chain: CredentialChain | None = None
        self._static_keys: tuple[str, str, str | None] | None = None
        if options.access_key and options.secret_key:
            self._static_keys = (options.access_key, options.secret_key, options.session_token)
        else:
            self._chain = CredentialChain(
                profile=options.profile, region=options.region_name, timeout=options.connect_timeout
            )
        self._root_certificate = read_ca_bundle(options.verify)
        self._proxy = _proxy_for(options.proxies, self._scheme)
        self._cloudfront: CloudFrontSigner | None = None
        if options.cloudfront_key_id and options.cloudfront_key:
            from stowage.drivers._cloudfront import CloudFrontSigner

            self._cloudfront = CloudFrontSigner(options.cloudfront_key_id, options.cloudfront_key)
        self._base_attributes = self.object_attributes(options.object_parameters)

    def _finish_create(self, staged: str, key: str) -> None:
        # S3's conditional copy is a multipart copy, which drops the content
        # headers; copy the staged object onto the target again to restore them.
        obstore.copy(self.store, staged, key, overwrite=False)
        obstore.copy(self.store, staged, key, overwrite=True)

    # -- the client ------------------------------------------------------------------

    def _make_store(self) -> S3Store:
        o = self.options
        config: dict[str, Any] = {
            "region": o.region_name,
            "virtual_hosted_style_request": not self._path_style,
            "copy_if_not_exists": "multipart",
            "conditional_put": "etag",
        }
        if o.endpoint_url:
            config["endpoint"] = o.endpoint_url
        if self._static_keys is not None:
            access, secret, token = self._static_keys
            config["access_key_id"] = access
            config["secret_access_key"] = secret
            if token:
                config["session_token"] = token
        if o.checksum_algorithm:
            config["checksum_algorithm"] = o.checksum_algorithm
        if o.server_side_encryption:
            config["server_side_encryption"] = o.server_side_encryption
        if o.sse_kms_key_id:
            config["sse_kms_key_id"] = o.sse_kms_key_id
        client: dict[str, Any] = {
            "connect_timeout": dt.timedelta(seconds=o.connect_timeout),
            "timeout": dt.timedelta(seconds=o.timeout),
            "allow_http": (o.endpoint_url or "").startswith("http://"),
            "allow_invalid_certificates": o.verify is False,
        }
        if self._root_certificate is not None:
            client["root_certificate"] = self._root_certificate
        if self._proxy is not None:
            client["proxy_url"] = self._proxy
        retry = retry_config(o.max_retries, o.timeout)
        with translate("configuring the S3 client", map_error):
            arguments: dict[str, Any] = {
                "config": config,
                "client_options": client,
                "retry_config": retry,
                "credential_provider": self._chain,
            }
            return S3Store(o.bucket_name, **arguments)

    # -- compression -------------------------------------------------------------------
    #
    # With ``gzip``, bodies of the configured types are stored compressed with
    # their original size in metadata; objects carrying that mark read back
    # plain, whatever the option says now. Anything else reads back exactly as
    # stored (a body saved with ContentEncoding=gzip by the caller stays as given).
    # Listings report stored (compressed) sizes; size() reports the original.

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
        """Upload ``stream``, gzip-compressed when ``gzip`` covers its content type."""
        attributes = self._attributes(content_type, cache_control, metadata, object_parameters)
        compress = (
            self.options.gzip
            and "Content-Encoding" not in attributes
            and _gzip.wants_gzip(attributes.get("Content-Type"), self.options.gzip_content_types)
        )
        if not compress:
            return self._put(key, stream, size, attributes, if_absent=if_absent)
        spool, plain = _gzip.compress(stream)
        with spool:
            stored = spool.seek(0, os.SEEK_END)
            spool.seek(0)
            attributes["Content-Encoding"] = "gzip"
            attributes[_gzip.PLAIN_SIZE_KEY] = str(plain)
            info = self._put(key, spool, stored, attributes, if_absent=if_absent)
        return dataclasses.replace(info, size=plain)

    async def aput(
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
        """Do :meth:`put` asynchronously (compression runs on a worker thread)."""
        kwargs: dict[str, Any] = {
            "size": size,
            "content_type": content_type,
            "if_absent": if_absent,
            "cache_control": cache_control,
            "metadata": metadata,
            "object_parameters": object_parameters,
        }
        if self.options.gzip:
            return await in_thread(self.put, key, stream, **kwargs)
        return await super().aput(key, stream, **kwargs)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` from ``start`` to ``end``, inflating what ``gzip`` stored."""
        download = super().get(key, start=start, end=end)
        plain = _gzip.plain_size(download.info.metadata)
        if plain is None:
            return download
        info = _plain_info(download.info, plain)
        if not start and end is None:
            return Download(info, _gzip.inflate(download), download.close)
        download.close()
        if start >= plain or (end is not None and end <= start):
            return Download(info, [])
        whole = super().get(key)
        return Download(info, _gzip.inflate(whole, start, end), whole.close)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` asynchronously; compressed objects inflate on a worker thread."""
        download = await super().aget(key, start=start, end=end)
        if _gzip.plain_size(download.info.metadata) is None:
            return download
        await download.aclose()
        return await Driver.aget(self, key, start=start, end=end)

    def head(self, key: str) -> ObjectInfo:
        """Describe ``key``; a compressed object reports its original size."""
        info = super().head(key)
        plain = _gzip.plain_size(info.metadata)
        return info if plain is None else _plain_info(info, plain)

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` on obstore's async client."""
        info = await super().ahead(key)
        plain = _gzip.plain_size(info.metadata)
        return info if plain is None else _plain_info(info, plain)

    # -- URLs -------------------------------------------------------------------------------

    def _url_path(self, key: str) -> str:
        path = f"/{self.options.bucket_name}/{key}" if self._path_style else f"/{key}"
        return self._base_path + path

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of ``key``."""
        # Quoted as Django quotes file URLs, which S3 decodes the same way.
        path = quote(self._url_path(key), safe=URL_SAFE)
        return f"{self._scheme}://{self._host}{path}"

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Presign ``method`` on ``key`` (response overrides through ``parameters``).

        With ``domain`` (custom-domain signing) the URL is signed for that host,
        with the key as its whole path: by CloudFront's rules when a CloudFront
        key is configured (GET only, no overrides), else by S3's. ``headers``
        are signed too, so the request must carry exactly those values.
        """
        if domain is not None and self._cloudfront is not None:
            if method != "GET" or parameters:
                raise UnsupportedOperation(
                    "CloudFront signed URLs grant GET only and take no response overrides; "
                    "use custom_domain=None for this URL to sign it on S3 itself."
                )
            return self._cloudfront.sign(f"{domain}/{quote(key, safe=URL_SAFE)}", expires)
        access, secret, token = self._keys()
        scheme, host, path = self._scheme, self._host, self._url_path(key)
        if domain is not None:
            parts = urlsplit(domain)
            scheme, host = parts.scheme, parts.netloc
            path = f"{parts.path.rstrip('/')}/{key}"
        try:
            return _sigv4.presign(
                method=method,
                scheme=scheme,
                host=host,
                path=path,
                region=self.options.region_name,
                access_key=access,
                secret_key=secret,
                session_token=token,
                expires=expires.days * 86400 + expires.seconds,
                parameters=parameters,
                headers=headers,
            )
        except ValueError as exc:
            raise UnsupportedOperation(str(exc)) from exc

    def presigned_post(
        self,
        key: str,
        *,
        expires: dt.timedelta,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Return the URL and form fields of a browser upload (POST) to ``key``.

        The policy lets the form upload exactly ``key``, at most ``max_size``
        bytes, with ``content_type`` when given; S3 refuses anything else.
        """
        access, secret, token = self._keys()
        fields, conditions = _sigv4.post_policy_fields(
            bucket=self.options.bucket_name,
            key=key,
            region=self.options.region_name,
            access_key=access,
            session_token=token,
        )
        if content_type:
            fields["Content-Type"] = content_type
            conditions.append({"Content-Type": content_type})
        if max_size is not None:
            conditions.append(["content-length-range", 0, max_size])
        fields.update(_sigv4.sign_post_policy(conditions, expires, secret, fields))
        base = f"{self._scheme}://{self._host}{self._base_path}"
        url = f"{base}/{self.options.bucket_name}" if self._path_style else base
        return {"url": url, "fields": fields}

    def _keys(self) -> tuple[str, str, str | None]:
        """Return the access key, secret and token that sign requests and URLs now."""
        if self._static_keys is not None:
            return self._static_keys
        assert self._chain is not None
        found = self._chain.get()
        return found.access_key, found.secret_key, found.token

    # -- async ---------------------------------------------------------------------------


class _UnsettledCapabilities(frozenset[Capability]):
    """Capabilities whose ``ATOMIC_CREATE`` is settled (by a probe) only when asked for.

    The set holds what is known without I/O; ``Capability.ATOMIC_CREATE in
    caps`` calls ``settle`` and answers with its result.
    """

    _settle: Callable[[], bool]

    def __new__(
        cls, known: frozenset[Capability], settle: Callable[[], bool]
    ) -> _UnsettledCapabilities:
        """Hold ``known`` and the function that settles ``ATOMIC_CREATE``."""
        caps = super().__new__(cls, known)
        caps._settle = settle
        return caps

    def __contains__(self, item: object) -> bool:
        """Answer from the set, except for ``ATOMIC_CREATE``, which ``settle`` decides."""
        if item is Capability.ATOMIC_CREATE:
            return self._settle()
        return super().__contains__(item)


def _proxy_for(proxies: Mapping[str, str], scheme: str) -> str | None:
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


def _plain_info(info: ObjectInfo, plain: int) -> ObjectInfo:
    """Describe a compressed object as its reader sees it, at its original size.

    The size mark stays in the metadata: it is how a later read knows to inflate.
    """
    return dataclasses.replace(info, size=plain)
