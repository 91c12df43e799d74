"""The S3 driver: obstore for most calls, stowage's own multipart client for large creates.

See :mod:`stowage.drivers.s3` for how creates work, the conditional-write
probe and URLs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

import obstore
from obstore.store import S3Store

from stowage.drivers import _gzip, _sigv4
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
    ObjectInfo,
    Prefix,
    Readable,
    in_thread,
)
from stowage.drivers.lookup import listing_refused
from stowage.drivers.s3.address import Address
from stowage.drivers.s3.checksum_support import AdditionalChecksums
from stowage.drivers.s3.conditional import ConditionalWrites, UnsettledCapabilities
from stowage.drivers.s3.options import PARAMETER_HEADERS, S3Options, proxy_for
from stowage.exceptions import (
    AccessDenied,
    ConfigurationError,
    UnsupportedOperation,
    translate,
)

if TYPE_CHECKING:
    from stowage.drivers._aws_credentials import CredentialChain
    from stowage.drivers._cloudfront import CloudFrontSigner

__all__ = ["S3Driver"]


class S3Driver(ConditionalWrites, AdditionalChecksums, ObstoreDriver[S3Options]):
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
    parameter_headers = PARAMETER_HEADERS
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
        return caps if atomic is False else UnsettledCapabilities(caps, self._creates_atomically)

    def __init__(self, options: S3Options) -> None:
        super().__init__(options)
        if not options.bucket_name:
            raise ConfigurationError(
                "S3 storage needs 'bucket_name' (OPTIONS or AWS_STORAGE_BUCKET_NAME)."
            )
        #: Where the bucket is: an endpoint's own path included, as obstore keeps it.
        self.address = Address.of(options)
        # Without a static key pair, one chain finds the keys (environment,
        # profile, web identity, container, instance) for requests and URLs alike.
        self._chain: CredentialChain | None = None
        self._static_keys: tuple[str, str, str | None] | None = None
        #: Presigns URLs with the keys in use (made again when they change).
        self._presigner: _sigv4.Presigner | None = None
        if options.access_key and options.secret_key:
            self._static_keys = (options.access_key, options.secret_key, options.session_token)
        else:
            # Imported here: the chain's modules (urllib.request, configparser, json)
            # cost a process with static keys a few milliseconds for nothing.
            from stowage.drivers._aws_credentials import CredentialChain

            self._chain = CredentialChain(
                profile=options.profile, region=options.region_name, timeout=options.connect_timeout
            )
        self._root_certificate = read_ca_bundle(options.verify)
        self._proxy = proxy_for(options.proxies, self.address.scheme)
        self._cloudfront: CloudFrontSigner | None = None
        if options.cloudfront_key_id and options.cloudfront_key:
            from stowage.drivers._cloudfront import CloudFrontSigner

            self._cloudfront = CloudFrontSigner(options.cloudfront_key_id, options.cloudfront_key)
        self._base_attributes = self.object_attributes(options.object_parameters)
        # Stowage's own client is imported with the first driver, not with the
        # backend: its HTTP and XML modules cost an import that never talks to S3.
        from stowage.drivers.s3.multipart import MultipartClient
        from stowage.drivers.s3.rest import RestClient

        #: Stowage's own signed S3 calls, beside obstore's (multipart creates, CORS).
        self.rest = RestClient(
            self.address,
            region=options.region_name,
            keys=self._keys,
            verify=options.verify,
            connect_timeout=options.connect_timeout,
            timeout=options.timeout,
            proxy=self._proxy,
            retry=self._retry,
        )
        #: The multipart API: large creates here, and direct uploads from browsers.
        self.multipart = MultipartClient(self.rest)
        #: Whether every upload is stowage's own: obstore sends no CRC32.
        self._own_uploads = options.checksum_algorithm == "crc32"
        if self._own_uploads and not self.rest.reachable:
            raise ConfigurationError(
                "Option 'checksum_algorithm'='crc32': stowage sends CRC32 checksums with "
                "its own S3 client, which goes directly or through an http:// proxy, not "
                f"through {self.rest.pool.proxy_scheme}://. Use 'sha256' or "
                "'crc64nvme' behind this proxy."
            )
        #: Set once the bucket refused the listing of exists() (no s3:ListBucket).
        self._listing_refused = False

    def close(self) -> None:
        """Drop the obstore client and close the idle connections of stowage's own calls."""
        super().close()
        self.rest.close()

    # -- creates --------------------------------------------------------------------

    def _put(
        self,
        key: str,
        stream: Readable,
        size: int | None,
        attributes: dict[str, str],
        *,
        if_absent: bool,
    ) -> ObjectInfo:
        large = size is None or size > self.multipart_threshold
        if if_absent and large and self.creates_directly():
            return self._upload_in_parts(key, stream, size, attributes, if_absent=True)
        return super()._put(key, stream, size, attributes, if_absent=if_absent)

    def _put_whole(
        self, key: str, body: bytes, attributes: dict[str, str], *, if_absent: bool
    ) -> ObjectInfo:
        if not self._own_uploads:
            return super()._put_whole(key, body, attributes, if_absent=if_absent)
        from stowage.drivers.s3.creates import object_headers, put_whole

        checksum = self.upload_checksum()
        etag = put_whole(
            self.multipart,
            key,
            body,
            headers=object_headers(attributes, self.options, checksum),
            checksum=checksum,
            if_absent=if_absent,
        )
        return ObjectInfo(
            key=key,
            size=len(body),
            etag=etag,
            content_type=attributes.get("Content-Type"),
            modified=dt.datetime.now(dt.UTC),
        )

    def _put_parts(
        self, target: str, stream: Readable, size: int | None, attributes: dict[str, str]
    ) -> None:
        if self._own_uploads or (
            self.options.checksum_algorithm == "auto" and self.upload_checksum() is not None
        ):
            # What obstore cannot send: the parts' CRC32s.
            self._upload_in_parts(target, stream, size, attributes, if_absent=False)
            return
        super()._put_parts(target, stream, size, attributes)

    def creates_directly(self) -> bool:
        """Tell whether a large create can be one multipart upload completed if the key is free.

        Not where the server ignores ``If-None-Match: *``, nor where stowage's
        own client cannot follow the configuration: a proxy it cannot use, or
        CRC64-NVME checksums, which Python does not compute fast enough.
        """
        if self.options.checksum_algorithm == "crc64nvme" or not self.rest.reachable:
            return False
        return self._creates_atomically()

    def _upload_in_parts(
        self,
        key: str,
        stream: Readable,
        size: int | None,
        attributes: dict[str, str],
        *,
        if_absent: bool,
    ) -> ObjectInfo:
        """Upload ``stream`` to ``key`` in one multipart upload of stowage's own.

        ``if_absent``: completed only if ``key`` is free.
        """
        from stowage.drivers.s3.creates import PartReader, create_in_parts, object_headers

        parts = PartReader(stream, self.part_size(size), self.multipart_concurrency)
        whole = parts.whole(self.multipart_threshold)
        if whole is not None:
            # A body of unknown size that fits in one request goes in one.
            with translate(f"writing {key!r}", map_error):
                return self._put_whole(key, whole, attributes, if_absent=if_absent)
        checksum = self.upload_checksum()
        created = create_in_parts(
            self.multipart,
            key,
            parts,
            headers=object_headers(attributes, self.options, checksum),
            concurrency=self.multipart_concurrency,
            checksum=checksum,
            if_absent=if_absent,
        )
        return ObjectInfo(
            key=key,
            size=created.size,
            etag=created.etag,
            content_type=attributes.get("Content-Type"),
            modified=dt.datetime.now(dt.UTC),
        )

    def _finish_create(self, staged: str, key: str) -> None:
        if self.creates_directly():
            # One multipart copy, given the staged object's headers, completed if the key is free.
            from stowage.drivers.s3.creates import copy_in_parts

            concurrency = self.multipart_concurrency
            copy_in_parts(
                self.multipart,
                staged,
                key,
                options=self.options,
                checksum=self.upload_checksum(),
                concurrency=concurrency,
            )
            return
        # Where stowage's own client cannot go: obstore's conditional copy, a multipart
        # copy that drops the headers, then a copy onto the target to restore them.
        obstore.copy(self.store, staged, key, overwrite=False)
        obstore.copy(self.store, staged, key, overwrite=True)

    # -- the client ------------------------------------------------------------------

    def _make_store(self) -> S3Store:
        o = self.options
        config: dict[str, Any] = {
            "region": o.region_name,
            "virtual_hosted_style_request": not self.address.path_style,
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
        if o.checksum_algorithm in ("sha256", "crc64nvme"):
            # obstore has no CRC32: stowage's own client sends the uploads that carry one.
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
        compress = self.compresses(attributes)
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
        if self.options.gzip or self._own_uploads:
            # Compression, and uploads obstore cannot send, run on a worker thread.
            return await in_thread(self.put, key, stream, **kwargs)
        return await super().aput(key, stream, **kwargs)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Stream ``key`` from ``start`` to ``end``, inflating what ``gzip`` stored."""
        download = super().get(key, start=start, end=end)
        info = _gzip.as_read(download.info)
        if info is download.info:
            return download
        plain = info.size
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
        return _gzip.as_read(super().head(key))

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` on obstore's async client."""
        return _gzip.as_read(await super().ahead(key))

    def exists_listing_unavailable(self) -> str | None:
        """Say why exists() cannot be one listing with these options (None when it can).

        No I/O: it reads the configuration (a listing the bucket refuses at
        run time is logged when it happens).
        """
        if not self.options.exists_by_listing or self.rest.reachable:
            return None
        return f"stowage's own S3 client cannot go through a {self.rest.pool.proxy_scheme}:// proxy"

    def _lists_for_exists(self, key: str) -> bool:
        return (
            bool(key)
            and self.options.exists_by_listing
            and not self._listing_refused
            and self.rest.reachable
        )

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` is an object or a directory, with one listing.

        With ``exists_by_listing`` off, where stowage's own calls cannot reach
        the bucket, or once the bucket refused a listing, a HEAD answers, then
        a listing of ``key/`` for a missing object.
        """
        if self._lists_for_exists(key):
            from stowage.drivers.s3.lookup import listed

            try:
                return listed(self.rest, key)
            except AccessDenied:
                self._listing_refused = True
                listing_refused(f"S3 bucket {self.options.bucket_name!r}")
        return super().exists(key)

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        if self._lists_for_exists(key):
            return await in_thread(self.exists, key)
        return await super().aexists(key)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List; one level a page at a time (:mod:`stowage.drivers.s3.listing`) where it can."""
        if recursive or not self.rest.reachable:
            return super().list(prefix, recursive=recursive)
        from stowage.drivers.s3.listing import list_level

        return list_level(self.rest, prefix, hidden=UPLOADS_PREFIX)

    def list_names(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """List one level's keys only, without describing each object, where it can."""
        if not self.rest.reachable:
            return super().list_names(prefix)
        from stowage.drivers.s3.listing import level_names

        return level_names(self.rest, prefix, hidden=UPLOADS_PREFIX)

    # -- URLs -------------------------------------------------------------------------------

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of ``key``."""
        # Quoted as Django quotes file URLs, which S3 decodes the same way.
        path = quote(self.address.path(key), safe=URL_SAFE)
        return f"{self.address.origin}{path}"

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
        presigner = self._current_presigner()
        scheme, host, path = self.address.scheme, self.address.host, self.address.path(key)
        if domain is not None:
            parts = urlsplit(domain)
            scheme, host = parts.scheme, parts.netloc
            path = f"{parts.path.rstrip('/')}/{key}"
        try:
            return presigner.url(
                method=method,
                scheme=scheme,
                host=host,
                path=path,
                expires=expires.days * 86400 + expires.seconds,
                parameters=parameters,
                headers=headers,
            )
        except ValueError as exc:
            raise UnsupportedOperation(str(exc)) from exc

    def signer(self, *, expires: dt.timedelta, domain: str | None = None) -> Callable[[str], str]:
        """Return :meth:`sign` for GET on a key; with static keys on S3's own host, faster."""
        seconds = expires.days * 86400 + expires.seconds
        # A subclass's own sign() is obeyed; sign() refuses bad lifetimes.
        own_sign = type(self).sign is not S3Driver.sign
        usual = 0 < seconds <= _sigv4.MAX_EXPIRES and not own_sign
        if domain is not None or self._static_keys is None or not usual:
            return super().signer(expires=expires, domain=domain)
        usual_url = self._current_presigner().usual_url
        scheme, host, prefix = self.address.scheme, self.address.host, self.address.path("")

        def sign(key: str) -> str:
            return usual_url("GET", scheme, host, prefix + key, seconds)

        return sign

    def _current_presigner(self) -> _sigv4.Presigner:
        """Return the presigner of the keys in use, made again when they changed."""
        keys = self._static_keys or self._keys()
        presigner = self._presigner
        if presigner is None or presigner.keys != keys:
            access, secret, token = keys
            presigner = self._presigner = _sigv4.Presigner(
                region=self.options.region_name,
                access_key=access,
                secret_key=secret,
                session_token=token,
            )
        return presigner

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
        return {"url": self.address.bucket_url(), "fields": fields}

    def _keys(self) -> tuple[str, str, str | None]:
        """Return the access key, secret and token that sign requests and URLs now."""
        if self._static_keys is not None:
            return self._static_keys
        assert self._chain is not None
        found = self._chain.get()
        return found.access_key, found.secret_key, found.token
