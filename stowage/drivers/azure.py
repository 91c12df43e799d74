"""Store blobs in Azure Blob Storage, on obstore.

Reads, writes, listings and copies are :class:`~stowage.drivers._obstore.ObstoreDriver`'s.
Atomic create is a PUT with ``If-None-Match: *``; a large one is staged and
copied into place with a conditional server-side copy (Azure keeps the
content headers on copy).

Credentials, first that applies: ``connection_string``; ``account_key``;
``sas_token``; ``token_credential`` (any object with azure-core's
``get_token``, served to obstore as a credential provider and cached until
shortly before it expires); a service principal (``client_id``,
``client_secret``, ``tenant_id``); a user-assigned managed identity
(``client_id`` alone); otherwise obstore's chain (environment, then the
system-assigned managed identity).

SAS URLs are signed by :mod:`stowage.drivers._azure_auth`: with an account
key a service SAS; with ``token_credential`` a user-delegation SAS, its key
fetched once a week. Both take response-header overrides and a custom
domain. A service principal or managed identity lives inside obstore, so its
URLs are obstore's user-delegation SAS, which cannot carry overrides nor
names obstore encodes (a space, ``%``, ``#``, non-ASCII …): those are refused.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import obstore
from obstore.store import AzureStore

from stowage.config import option
from stowage.drivers._azure_auth import (
    MAX_DELEGATION,
    SAS_TIME,
    TokenCredentialProvider,
    UserDelegationKey,
    account_sas,
    blob_sas,
    fetch_user_delegation_key,
    response_overrides,
)
from stowage.drivers._obstore import ObstoreDriver, map_error, read_ca_bundle, retry_config
from stowage.drivers.base import URL_SAFE, Capability, MiB, in_thread
from stowage.drivers.lookup import listing_refused
from stowage.drivers.options import ListingOptions, ObjectStoreOptions
from stowage.exceptions import AccessDenied, ConfigurationError, UnsupportedOperation, translate
from stowage.records import record

if TYPE_CHECKING:
    from stowage.drivers._azure_listing import Authorize, BlobLister

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


@record
class AzureOptions(ObjectStoreOptions, ListingOptions):
    """Options of the Azure driver (django-storages' names where the meaning is the same)."""

    azure_container: str = option("", doc="The blob container.")
    account_name: str | None = option(None, doc="Storage account name.")
    account_key: str | None = option(None, doc="Storage account key.", secret=True)
    connection_string: str | None = option(
        None, doc="Connection string (account, key or SAS, endpoint).", secret=True
    )
    sas_token: str | None = option(None, doc="A SAS token granting access.", secret=True)
    token_credential: Any = option(
        None,
        doc="A token credential (any object with azure-core's get_token, such as "
        "azure-identity's DefaultAzureCredential); its tokens are cached until shortly "
        "before they expire.",
        secret=True,
    )
    client_id: str | None = option(
        None,
        doc="Client id: of a service principal with client_secret and tenant_id, or alone, "
        "of a user-assigned managed identity.",
    )
    client_secret: str | None = option(None, doc="Service principal secret.", secret=True)
    tenant_id: str | None = option(None, doc="Service principal tenant.")
    msi_endpoint: str | None = option(
        None,
        doc="Managed identity token endpoint, if not the instance metadata service "
        "(default: the AZURE_MSI_ENDPOINT environment variable, then the metadata service).",
    )
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
    multipart_chunksize: int = option(
        4 * MiB,
        doc="Size of each uploaded block; larger for a body that would need over 50,000 blocks.",
    )
    multipart_concurrency: int = option(
        2,
        doc="Blocks uploaded at once, each held in memory: 2, as django-storages' "
        "upload_max_conn; raise it where the link to the account is slow but wide.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = set(self.object_parameters) - set(_HEADERS) - {"metadata"}
        if unknown:
            raise ConfigurationError(
                f"Option 'object_parameters' has unsupported keys {sorted(unknown)}; "
                f"valid: {[*sorted(_HEADERS), 'metadata']}."
            )


def _parse_connection_string(text: str) -> dict[str, str]:
    parts = dict(p.split("=", 1) for p in text.strip(";").split(";") if "=" in p)
    if "AccountName" not in parts and "BlobEndpoint" not in parts:
        raise ConfigurationError("Option 'connection_string' names no AccountName or BlobEndpoint.")
    return parts


class AzureDriver(ObstoreDriver[AzureOptions]):
    """Move bytes to and from one blob container."""

    options_class = AzureOptions
    max_parts = 50_000
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SIGN,
            Capability.SIGN_CUSTOM_DOMAIN,
            Capability.PUBLIC_URL,
            Capability.SERVER_COPY,
            Capability.OBJECT_PARAMETERS,
        }
    )
    native_async = True
    parameter_headers = _HEADERS

    def __init__(self, options: AzureOptions) -> None:
        super().__init__(options)
        if not options.azure_container:
            raise ConfigurationError(
                "Azure storage needs 'azure_container' (OPTIONS or AZURE_CONTAINER)."
            )
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
        # As in django-storages, a key or a SAS token wins over token credentials.
        keyed = "account_key" in self._config or "sas_key" in self._config
        self._credential_provider: TokenCredentialProvider | None = None
        if options.token_credential is not None:
            provider = TokenCredentialProvider(options.token_credential)  # checks it
            self._credential_provider = None if keyed else provider
        self._config.update(
            _identity_config(options, keyed or self._credential_provider is not None)
        )
        self._root_certificate = read_ca_bundle(options.verify)
        self._delegation: UserDelegationKey | None = None
        self._delegation_lock = threading.Lock()
        self._account = account
        self._endpoint = (endpoint or f"https://{account}.blob.core.windows.net").rstrip("/")
        self._base_attributes = self.object_attributes(options.object_parameters)
        #: Set once the container refused the listing of exists() (no list permission).
        self._listing_refused = False
        #: Why exists() cannot be one listing (None when it can, or is not asked to).
        self._no_lister: str | None = None
        self._lister = self._make_lister()

    def _make_lister(self) -> BlobLister | None:
        """Return the client of exists()'s listing, or None where stowage cannot authorize it."""
        if not self.options.exists_by_listing:
            return None
        # Imported with the first driver that lists: its HTTP modules cost an import.
        from stowage.drivers import _azure_listing as listing

        account_key, sas = self._config.get("account_key"), self._config.get("sas_key")
        provider = self._credential_provider
        authorize: Authorize
        if account_key is not None:
            container = self.options.azure_container
            authorize = listing.sas_from_account_key(self._account, container, account_key)
        elif sas is not None:
            authorize = listing.given_sas(sas)
        elif provider is not None:
            authorize = listing.bearer(provider)
        else:
            # A service principal, a managed identity or obstore's own chain.
            self._no_lister = (
                "obstore holds the credential (a service principal, a managed identity or its "
                "default chain), which stowage's own client cannot use"
            )
            return None
        lister = listing.BlobLister(
            self._endpoint,
            self.options.azure_container,
            authorize=authorize,
            verify=self.options.verify,
            connect_timeout=self.options.connect_timeout,
            timeout=self.options.timeout,
            retry=self._retry,
        )
        if not lister.reachable:
            scheme = lister.pool.proxy_scheme
            self._no_lister = f"stowage's own Azure client cannot go through a {scheme}:// proxy"
            return None
        return lister

    def exists_listing_unavailable(self) -> str | None:
        """Say why exists() cannot be one listing with these options (None when it can).

        No I/O: it reads the configuration (a listing the container refuses at
        run time is logged when it happens).
        """
        return self._no_lister

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` is a blob or a directory, with one listing.

        With ``exists_by_listing`` off, with a credential obstore holds (a
        service principal, a managed identity), or once the container refused a
        listing, a HEAD answers, then a listing of ``key/`` for a missing blob.
        """
        lister = self._lister
        if key and lister is not None and not self._listing_refused:
            try:
                return lister.exists(key)
            except AccessDenied as exc:
                if not lister.forbidden(exc):
                    raise
                self._listing_refused = True
                listing_refused(f"Azure container {self.options.azure_container!r}")
        return super().exists(key)

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        if key and self._lister is not None and not self._listing_refused:
            return await in_thread(self.exists, key)
        return await super().aexists(key)

    def close(self) -> None:
        """Drop the obstore client and close the idle connections of the listing."""
        super().close()
        if self._lister is not None:
            self._lister.close()

    def _make_store(self) -> AzureStore:
        o = self.options
        if self._credential_provider is not None:
            # Fetch the first token here, where a failing or misbehaving credential
            # raises stowage's own error; inside obstore it becomes a vague 401.
            self._credential_provider()
        config = {"account_name": self._account, "endpoint": self._endpoint, **self._config}
        client = {
            "connect_timeout": dt.timedelta(seconds=o.connect_timeout),
            "timeout": dt.timedelta(seconds=o.timeout),
            "allow_http": self._endpoint.startswith("http://"),
            "allow_invalid_certificates": o.verify is False,
        }
        if self._root_certificate is not None:
            client["root_certificate"] = self._root_certificate
        retry = retry_config(o.max_retries, o.timeout)
        with translate("configuring the Azure client", map_error):
            return AzureStore(
                o.azure_container,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,  # type: ignore[arg-type]
                credential_provider=self._credential_provider,  # type: ignore[arg-type]
            )

    def domain_path(self, key: str) -> str:
        """Return ``container/key``: a custom domain serves the account, as in django-storages."""
        return f"{self.options.azure_container}/{key}"

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of ``key`` (readable if the container is public)."""
        path = quote(f"{self.options.azure_container}/{key}", safe=URL_SAFE)
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
        """Return a SAS URL granting ``method`` on ``key`` until ``expires`` from now.

        ``parameters`` are response-header overrides, by boto3's name
        (``ResponseContentDisposition``), django-storages' (``content_disposition``)
        or the query's (``rscd``). With ``domain`` the URL is on that host, the
        container and blob as its path, as django-storages makes it.
        """
        permission = _PERMISSIONS.get(method)
        if permission is None:
            raise UnsupportedOperation(f"Azure SAS URLs cannot be made for {method}.")
        overrides = response_overrides(parameters or {})
        account_key = self._config.get("account_key")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        expiry = now + expires
        if account_key is None and "sas_key" in self._config:
            raise UnsupportedOperation(
                "Azure storage authenticated by a SAS token cannot sign URLs: give "
                "'account_key' (or a connection string holding one), or set "
                "querystring_auth=False for unsigned URLs."
            )
        if account_key is not None or self._credential_provider is not None:
            query = blob_sas(
                account=self._account,
                container=self.options.azure_container,
                blob=key,
                permission=permission,
                expiry=expiry.strftime(SAS_TIME),
                overrides=overrides,
                account_key=account_key,
                delegation=None if account_key else self._delegation_key(now, expiry),
            )
        elif overrides or set(key) & _OBSTORE_ENCODES or not key.isascii():
            # obstore signs the percent-encoded name, which the service refuses.
            raise UnsupportedOperation(
                f"Azure SAS URLs for {key!r} with response overrides, or for a name with "
                'a space, non-ASCII letters or any of "#%<>?\\`{} cannot be signed by '
                "a service principal or managed identity: give 'token_credential' "
                "(azure-identity's credential of the same identity) or 'account_key'."
            )
        else:
            with translate(f"signing {key!r}", map_error):
                signed = str(obstore.sign(self.store, method, key, expires))  # type: ignore[call-overload]
            query = signed.split("?", 1)[1]
        base = self._endpoint if domain is None else domain.rstrip("/")
        return f"{base}/{self._url_path(key)}?{query}"

    def sign_service(self, *, permission: str, expires: dt.timedelta) -> str:
        """Return the blob service's own URL with an account SAS granting ``permission``.

        For service-level calls (Get and Set Blob Service Properties: the
        account's CORS rules). Needs the account key.
        """
        account_key = self._config.get("account_key")
        if account_key is None:
            raise UnsupportedOperation(
                "Calls to the Azure blob service itself (its CORS rules) are signed with "
                "the account key: give 'account_key' or a connection string holding one."
            )
        expiry = dt.datetime.now(dt.UTC).replace(microsecond=0) + expires
        query = account_sas(
            account=self._account,
            account_key=account_key,
            permission=permission,
            expiry=expiry.strftime(SAS_TIME),
        )
        return f"{self._endpoint}/?{query}"

    def _url_path(self, key: str) -> str:
        return quote(f"{self.options.azure_container}/{key}", safe=URL_SAFE)

    def _delegation_key(self, now: dt.datetime, until: dt.datetime) -> UserDelegationKey:
        """Return a user delegation key valid ``until``, fetched at most once a week."""
        if until > now + MAX_DELEGATION:
            raise UnsupportedOperation(
                "Azure user-delegation SAS URLs last at most 7 days: ask for a shorter "
                "'expire', or give 'account_key' to sign longer ones."
            )
        with self._delegation_lock:
            cached = self._delegation
            if cached is None or cached.expires < until:
                cached = self._delegation = self._fetch_delegation_key(now)
            return cached

    def _fetch_delegation_key(self, now: dt.datetime) -> UserDelegationKey:
        assert self._credential_provider is not None
        context = ssl.create_default_context()
        if self.options.verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self._root_certificate is not None:
            context.load_verify_locations(cadata=self._root_certificate)
        return fetch_user_delegation_key(
            self._endpoint,
            self._credential_provider()["token"],
            start=now,
            context=context,
            timeout=self.options.timeout,
        )


#: ASCII characters obstore's signer percent-encodes before signing the name.
_OBSTORE_ENCODES = frozenset(' "#%<>?\\`{}')
_PERMISSIONS = {"GET": "r", "HEAD": "r", "PUT": "w", "DELETE": "d"}


def _identity_config(options: AzureOptions, other_credentials: bool) -> dict[str, str]:
    """Return obstore's config for a service principal or a managed identity."""
    client_id, secret, tenant = options.client_id, options.client_secret, options.tenant_id
    if secret and not (client_id and tenant):
        raise ConfigurationError(
            "Option 'client_secret' needs 'client_id' and 'tenant_id' (a service principal)."
        )
    if tenant and client_id and not secret:
        raise ConfigurationError(
            "Option 'tenant_id' is used only with 'client_secret' (a service principal); "
            "remove it to use the managed identity 'client_id' names, or, for workload "
            "identity, leave both to the AZURE_CLIENT_ID, AZURE_TENANT_ID and "
            "AZURE_FEDERATED_TOKEN_FILE environment variables."
        )
    config: dict[str, str] = {}
    if options.msi_endpoint:
        config["msi_endpoint"] = options.msi_endpoint
    if other_credentials:
        return config
    if client_id and secret and tenant:
        config.update(
            credential_type="client_secret",
            client_id=client_id,
            client_secret=secret,
            tenant_id=tenant,
        )
    elif client_id:
        # azure-identity reads a client id without a secret as the user-assigned
        # managed identity to use; obstore would otherwise try its whole chain.
        config.update(credential_type="managed_identity", client_id=client_id)
    return config
