"""Store blobs in Azure Blob Storage, on obstore.

Reads, writes, listings and copies are :class:`~stowage.drivers._obstore.ObstoreDriver`'s.
Atomic create is a PUT with ``If-None-Match: *``; a large one is staged and
copied into place with a conditional server-side copy (Azure keeps the
content headers on copy).

Credentials, first that applies: ``connection_string``; ``account_key``;
``sas_token``; a service principal (``client_id``, ``client_secret``,
``tenant_id``); otherwise obstore's chain (environment, managed identity).
URLs are SAS URLs signed by obstore: with an account key a service SAS,
with token credentials a user-delegation SAS. Response-header overrides are
not supported by obstore's signer, so ``url(parameters=...)`` is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import obstore
from obstore.store import AzureStore

from stowage.config import option
from stowage.drivers._obstore import ObstoreDriver, map_error, retry_config
from stowage.drivers.base import URL_SAFE, Capability, DriverOptions, MiB
from stowage.drivers.retry import DEFAULT_MAX_RETRIES
from stowage.exceptions import ConfigurationError, UnsupportedOperation, translate

__all__ = ["AzureDriver", "AzureOptions"]

#: object_parameters keys (django-storages' content settings) and their headers.
_HEADERS = {
    "cache_control": "Cache-Control",
    "content_disposition": "Content-Disposition",
    "content_encoding": "Content-Encoding",
    "content_language": "Content-Language",
    "content_type": "Content-Type",
    "access_tier": "Storage-Class",
}


@dataclass(frozen=True)
class AzureOptions(DriverOptions):
    """Options of the Azure driver (django-storages' names where the meaning is the same)."""

    azure_container: str = option("", doc="The blob container.")
    account_name: str | None = option(None, doc="Storage account name.")
    account_key: str | None = option(None, doc="Storage account key.", secret=True)
    connection_string: str | None = option(
        None, doc="Connection string (account, key or SAS, endpoint).", secret=True
    )
    sas_token: str | None = option(None, doc="A SAS token granting access.", secret=True)
    client_id: str | None = option(None, doc="Service principal client id.")
    client_secret: str | None = option(None, doc="Service principal secret.", secret=True)
    tenant_id: str | None = option(None, doc="Service principal tenant.")
    endpoint: str | None = option(
        None, doc="Blob endpoint (Azurite: http://127.0.0.1:10000/devstoreaccount1)."
    )
    object_parameters: dict[str, Any] = option(
        default_factory=dict,
        doc="Content settings and metadata for every blob: cache_control, "
        "content_disposition, content_encoding, content_language, content_type, "
        "access_tier (Hot, Cool, Cold, Archive), metadata. A large blob saved under a new "
        "name is staged and copied into place; the copy may take the account's default tier.",
    )
    timeout: float = option(60.0, doc="Seconds a request may take.")
    connect_timeout: float = option(5.0, doc="Seconds to wait for a connection.")
    max_retries: int = option(
        DEFAULT_MAX_RETRIES,
        doc="Retries of a failed idempotent request, with the pause every network driver "
        "uses (capped exponential backoff with jitter).",
    )
    multipart_threshold: int = option(8 * MiB, doc="Bodies larger than this go up in blocks.")
    multipart_chunksize: int = option(
        8 * MiB,
        doc="Size of each uploaded block; larger for a body that would need over 50,000 blocks.",
    )
    multipart_concurrency: int = option(
        4, doc="Blocks uploaded at once; each holds one block in memory."
    )

    def __post_init__(self) -> None:
        unknown = set(self.object_parameters) - set(_HEADERS) - {"metadata"}
        if unknown:
            raise ConfigurationError(
                f"Option 'object_parameters' has unsupported keys {sorted(unknown)}; "
                f"valid: {[*sorted(_HEADERS), 'metadata']}."
            )
        if self.multipart_concurrency < 1:
            raise ConfigurationError("Option 'multipart_concurrency' must be at least 1.")


def _parse_connection_string(text: str) -> dict[str, str]:
    parts = dict(p.split("=", 1) for p in text.strip(";").split(";") if "=" in p)
    if "AccountName" not in parts and "BlobEndpoint" not in parts:
        raise ConfigurationError("Option 'connection_string' names no AccountName or BlobEndpoint.")
    return parts


class AzureDriver(ObstoreDriver):
    """Move bytes to and from one blob container."""

    options_class = AzureOptions
    max_parts = 50_000
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SIGN,
            Capability.PUBLIC_URL,
            Capability.SERVER_COPY,
            Capability.OBJECT_PARAMETERS,
        }
    )
    native_async = True

    def __init__(self, options: DriverOptions) -> None:
        super().__init__(options)
        assert isinstance(options, AzureOptions)
        if not options.azure_container:
            raise ConfigurationError(
                "Azure storage needs 'azure_container' (OPTIONS or AZURE_CONTAINER)."
            )
        self.azure = options
        self._config: dict[str, Any] = {}
        account = options.account_name
        endpoint = options.endpoint
        if options.connection_string:
            parts = _parse_connection_string(options.connection_string)
            account = parts.get("AccountName", account)
            endpoint = parts.get("BlobEndpoint", endpoint)
            if "AccountKey" in parts:
                self._config["account_key"] = parts["AccountKey"]
            if "SharedAccessSignature" in parts:
                self._config["sas_key"] = parts["SharedAccessSignature"]
            if endpoint is None and account:
                protocol = parts.get("DefaultEndpointsProtocol", "https")
                suffix = parts.get("EndpointSuffix", "core.windows.net")
                endpoint = f"{protocol}://{account}.blob.{suffix}"
        if not account:
            raise ConfigurationError(
                "Azure storage needs 'account_name' or a 'connection_string' naming it."
            )
        if options.account_key:
            self._config["account_key"] = options.account_key
        if options.sas_token:
            self._config["sas_key"] = options.sas_token.lstrip("?")
        if options.client_id and options.client_secret and options.tenant_id:
            self._config.update(
                client_id=options.client_id,
                client_secret=options.client_secret,
                tenant_id=options.tenant_id,
            )
        self._account = account
        self._endpoint = (endpoint or f"https://{account}.blob.core.windows.net").rstrip("/")
        self._base_attributes = self.object_attributes(options.object_parameters)

    def object_attributes(self, parameters: Mapping[str, Any]) -> dict[str, str]:
        """Turn Azure object parameters (content_type, metadata …) into obstore attributes."""
        unknown = set(parameters) - set(_HEADERS) - {"metadata"}
        if unknown:
            raise ConfigurationError(
                f"Object parameters {sorted(unknown)} are not supported; "
                f"valid: {[*sorted(_HEADERS), 'metadata']}."
            )
        attributes = {_HEADERS[k]: str(v) for k, v in parameters.items() if k in _HEADERS}
        for name, value in dict(parameters.get("metadata", {})).items():
            attributes[str(name)] = str(value)
        return attributes

    def _make_store(self) -> AzureStore:
        o = self.azure
        config = {"account_name": self._account, "endpoint": self._endpoint, **self._config}
        client = {
            "connect_timeout": dt.timedelta(seconds=o.connect_timeout),
            "timeout": dt.timedelta(seconds=o.timeout),
            "allow_http": self._endpoint.startswith("http://"),
        }
        retry = retry_config(o.max_retries, o.timeout)
        with translate("configuring the Azure client", map_error):
            return AzureStore(
                o.azure_container,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,  # type: ignore[arg-type]
            )

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of ``key`` (readable if the container is public)."""
        path = quote(f"{self.azure.azure_container}/{key}", safe=URL_SAFE)
        return f"{self._endpoint}/{path}"

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        """Return a SAS URL granting ``method`` on ``key`` until ``expires`` from now."""
        if parameters:
            raise UnsupportedOperation(
                "Azure SAS URLs from this backend take no response overrides ('parameters')."
            )
        if method not in ("GET", "PUT", "DELETE", "HEAD"):
            raise UnsupportedOperation(f"Azure SAS URLs cannot be made for {method}.")
        if "sas_key" in self._config and "account_key" not in self._config:
            raise UnsupportedOperation(
                "Azure storage authenticated by a SAS token cannot sign URLs: give "
                "'account_key' (or a connection string holding one), or set "
                "querystring_auth=False for unsigned URLs."
            )
        with translate(f"signing {key!r}", map_error):
            url = str(obstore.sign(self.store, method, key, expires))  # type: ignore[call-overload]
        # obstore leaves @ $ ^ & + = bare in the path; quote it as Django quotes names,
        # which the signature does not cover (it signs the decoded blob name).
        path, query = url.split("?", 1)
        scheme, _, rest = path.partition("://")
        host, _, blob_path = rest.partition("/")
        quoted = quote(unquote(blob_path), safe=URL_SAFE)
        return f"{scheme}://{host}/{quoted}?{query}"
