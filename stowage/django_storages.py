"""State what becomes of every django-storages setting and option name in stowage.

A project moving from django-storages keeps its settings: for each backend,
this module lists every global setting and every ``OPTIONS`` key that
django-storages reads, and says which stowage option it feeds
(:class:`Honoured`), or why stowage does not take it and what to use
instead (:class:`Refused`). No name is kept with another meaning.

The storage adapter reads these tables when it builds its options:

* an ``OPTIONS`` key of a :class:`Refused` entry raises
  :class:`~stowage.exceptions.ConfigurationError` saying what to use instead;
* a global setting of a :class:`Refused` entry is reported by the system
  check ``stowage.W006`` (:func:`stowage.checks.check_django_storages_settings`);
* an option missing from ``OPTIONS`` is read from the first of its
  :attr:`Honoured.settings` that is set, as django-storages reads
  ``AWS_S3_ACCESS_KEY_ID`` before ``AWS_ACCESS_KEY_ID``.

A value that asks for what stowage does anyway (``None``, ``use_ssl=True``,
``signature_version="s3v4"`` …) is accepted without a word: the behaviour
is the one asked for.

A driver outside this package still declares its own ``setting_fallbacks``
and ``option_aliases``; :func:`names_for` adds them to the table of the
built-in driver it derives from, if any.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from django.conf import settings

from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = [
    "TABLES",
    "BackendNames",
    "Honoured",
    "Refused",
    "names_for",
]


@record
class Honoured:
    """Feed one stowage option from django-storages' names of the same meaning.

    The option's own name is accepted in ``OPTIONS``; so is each of
    ``spellings``. Without any of them, the first of ``settings`` that is set
    gives the value. A value of a ``refused_type`` (in ``OPTIONS`` or a
    setting) is refused with ``refusal``.
    """

    option: str
    settings: tuple[str, ...] = ()
    spellings: tuple[str, ...] = ()
    refused_type: type | None = None
    refusal: str = ""
    #: A setting of stowage's own, spelled like django-storages' (no counterpart there).
    stowage_only: bool = False


@record
class Refused:
    """Refuse a django-storages ``OPTIONS`` key and its global setting, saying what to do.

    ``harmless`` values (and ``None``, django-storages' "not set") ask for
    what stowage does anyway; they are accepted and change nothing.
    """

    option: str | None
    setting: str | None
    instead: str
    harmless: tuple[Any, ...] = ()

    def is_harmless(self, value: Any) -> bool:
        """Return whether ``value`` asks for what stowage does anyway."""
        return value is None or any(type(value) is type(h) and value == h for h in self.harmless)


@record
class BackendNames:
    """Hold the fate of each django-storages name for one backend."""

    #: The django-storages class these names belong to (empty for none).
    backend: str
    honoured: tuple[Honoured, ...] = ()
    refused: tuple[Refused, ...] = ()
    #: Fallbacks and aliases a driver declares itself (third-party drivers).
    extra_fallbacks: Mapping[str, str] = field(default_factory=dict)
    extra_aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def option_aliases(self) -> dict[str, str]:
        """Return every other ``OPTIONS`` spelling, alias -> stowage option."""
        aliases = {s: h.option for h in self.honoured for s in h.spellings}
        return {**aliases, **self.extra_aliases}

    @property
    def setting_candidates(self) -> dict[str, tuple[str, ...]]:
        """Return the settings read for each option, in the order they are tried."""
        found = {h.option: h.settings for h in self.honoured if h.settings}
        found.update({o: (s,) for o, s in self.extra_fallbacks.items()})
        return found

    def setting_fallbacks(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return, per option, the one setting to read now: the first that is set.

        ``overrides`` (a storage class's own ``setting_fallbacks``) win.
        """
        chosen: dict[str, str] = {}
        for option, names in self.setting_candidates.items():
            chosen[option] = next((n for n in names if hasattr(settings, n)), names[0])
        chosen.update(overrides or {})
        return chosen

    def refused_options(self) -> dict[str, Refused]:
        """Return the refused ``OPTIONS`` keys."""
        return {r.option: r for r in self.refused if r.option}

    def refused_settings(self) -> dict[str, Refused]:
        """Return the refused global settings."""
        return {r.setting: r for r in self.refused if r.setting}

    def accept(self, options: Mapping[str, Any], fallbacks: Mapping[str, str]) -> dict[str, Any]:
        """Return ``options`` without harmless refused keys; raise for any other refused one.

        ``options`` are the ``OPTIONS`` as given (before aliases);
        ``fallbacks`` the setting read for each option they lack. The
        ``ConfigurationError`` names the key or setting and what to use instead.
        """
        where = f" of django-storages' {self.backend}" if self.backend else ""
        refused_options = self.refused_options()
        kept: dict[str, Any] = {}
        for key, value in options.items():
            refused = refused_options.get(key)
            if refused is None:
                kept[key] = value
            elif not refused.is_harmless(value):
                raise ConfigurationError(
                    f"Option {key!r}{where} is not supported by stowage: {refused.instead}"
                )
        aliases = self.option_aliases
        given = {aliases.get(k, k): v for k, v in kept.items()}
        for honoured in self.honoured:
            if honoured.refused_type is None:
                continue
            name = honoured.option
            if name in given:
                value, source = given[name], f"Option {name!r}"
            elif name in fallbacks and hasattr(settings, fallbacks[name]):
                value, source = getattr(settings, fallbacks[name]), f"Setting {fallbacks[name]}"
            else:
                continue
            if isinstance(value, honoured.refused_type):
                raise ConfigurationError(f"{source}: {honoured.refusal}")
        return kept


_PROXY = "set HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) in the environment, which the client reads"

_S3 = BackendNames(
    backend="storages.backends.s3.S3Storage",
    honoured=(
        Honoured("access_key", ("AWS_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")),
        Honoured("secret_key", ("AWS_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")),
        Honoured("session_token", ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"), ("security_token",)),
        Honoured("bucket_name", ("AWS_STORAGE_BUCKET_NAME",), ("bucket",)),
        Honoured("region_name", ("AWS_S3_REGION_NAME",), ("region",)),
        Honoured("endpoint_url", ("AWS_S3_ENDPOINT_URL",), ("endpoint",)),
        Honoured("addressing_style", ("AWS_S3_ADDRESSING_STYLE",)),
        Honoured("object_parameters", ("AWS_S3_OBJECT_PARAMETERS",)),
        Honoured("default_acl", ("AWS_DEFAULT_ACL",)),
        Honoured("verify", ("AWS_S3_VERIFY",)),
        Honoured("proxies", ("AWS_S3_PROXIES",)),
        Honoured("profile", ("AWS_S3_SESSION_PROFILE",), ("session_profile",)),
        Honoured("location", ("AWS_LOCATION",)),
        Honoured("custom_domain", ("AWS_S3_CUSTOM_DOMAIN",)),
        Honoured("url_protocol", ("AWS_S3_URL_PROTOCOL",)),
        Honoured("querystring_auth", ("AWS_QUERYSTRING_AUTH",)),
        Honoured("querystring_expire", ("AWS_QUERYSTRING_EXPIRE",)),
        Honoured("file_overwrite", ("AWS_S3_FILE_OVERWRITE",)),
        Honoured("max_memory_size", ("AWS_S3_MAX_MEMORY_SIZE",)),
        Honoured("gzip", ("AWS_IS_GZIPPED",)),
        Honoured("gzip_content_types", ("GZIP_CONTENT_TYPES",)),
        Honoured("cloudfront_key_id", ("AWS_CLOUDFRONT_KEY_ID",)),
        Honoured("cloudfront_key", ("AWS_CLOUDFRONT_KEY",)),
    ),
    refused=(
        Refused(
            "signature_version",
            "AWS_S3_SIGNATURE_VERSION",
            "stowage signs every request and URL with SigV4 ('s3v4'); remove it.",
            ("s3v4",),
        ),
        Refused(
            "file_name_charset",
            "AWS_S3_FILE_NAME_CHARSET",
            "stowage stores names as UTF-8, as S3 requires; remove it.",
            ("utf-8", "utf8", "UTF-8"),
        ),
        Refused(
            "use_ssl",
            "AWS_S3_USE_SSL",
            "to talk plain HTTP, give endpoint_url an http:// URL.",
            (True,),
        ),
        Refused(
            "use_threads",
            "AWS_S3_USE_THREADS",
            "set multipart_concurrency=1 to upload one part at a time.",
            (True,),
        ),
        Refused(
            "transfer_config",
            "AWS_S3_TRANSFER_CONFIG",
            "use multipart_threshold, multipart_chunksize and multipart_concurrency instead.",
        ),
        Refused(
            "client_config",
            "AWS_S3_CLIENT_CONFIG",
            "use connect_timeout, timeout, max_retries, addressing_style, proxies and "
            "checksum_algorithm instead.",
        ),
        Refused(
            "cloudfront_signer",
            None,
            "give cloudfront_key_id and cloudfront_key; stowage makes the signer.",
        ),
        Refused(
            None,
            "AWS_S3_FILE_BUFFER_SIZE",
            "set multipart_chunksize, the size of each uploaded part.",
        ),
    ),
)

_GCS = BackendNames(
    backend="storages.backends.gcloud.GoogleCloudStorage",
    honoured=(
        Honoured("bucket_name", ("GS_BUCKET_NAME",)),
        Honoured("project_id", ("GS_PROJECT_ID",)),
        Honoured("credentials", ("GS_CREDENTIALS",)),
        # django-storages' custom_endpoint is the host serving the bucket in
        # generated URLs (signed there too): custom_domain here.
        Honoured("custom_domain", ("GS_CUSTOM_ENDPOINT",), ("custom_endpoint",)),
        Honoured("location", ("GS_LOCATION",)),
        Honoured("default_acl", ("GS_DEFAULT_ACL",)),
        Honoured("querystring_auth", ("GS_QUERYSTRING_AUTH",)),
        Honoured("querystring_expire", ("GS_EXPIRATION",), ("expiration",)),
        Honoured("gzip", ("GS_IS_GZIPPED",)),
        Honoured("gzip_content_types", ("GZIP_CONTENT_TYPES",)),
        Honoured("file_overwrite", ("GS_FILE_OVERWRITE",)),
        Honoured("object_parameters", ("GS_OBJECT_PARAMETERS",)),
        Honoured("max_memory_size", ("GS_MAX_MEMORY_SIZE",)),
        Honoured("blob_chunk_size", ("GS_BLOB_CHUNK_SIZE",)),
        Honoured("iam_sign_blob", ("GS_IAM_SIGN_BLOB",)),
        Honoured("sa_email", ("GS_SA_EMAIL",)),
        # django-storages has no HMAC signing: these settings are stowage's own.
        Honoured("hmac_access_id", ("GS_HMAC_ACCESS_ID",), stowage_only=True),
        Honoured("hmac_secret", ("GS_HMAC_SECRET",), stowage_only=True),
    ),
)

_AZURE = BackendNames(
    backend="storages.backends.azure_storage.AzureStorage",
    honoured=(
        Honoured("azure_container", ("AZURE_CONTAINER",), ("container",)),
        Honoured("account_name", ("AZURE_ACCOUNT_NAME",)),
        Honoured("account_key", ("AZURE_ACCOUNT_KEY",)),
        Honoured("connection_string", ("AZURE_CONNECTION_STRING",)),
        Honoured("sas_token", ("AZURE_SAS_TOKEN",)),
        Honoured("token_credential", ("AZURE_TOKEN_CREDENTIAL",)),
        Honoured("client_id", ("AZURE_CLIENT_ID",)),
        Honoured("client_secret", ("AZURE_CLIENT_SECRET",)),
        Honoured("tenant_id", ("AZURE_TENANT_ID",)),
        Honoured("object_parameters", ("AZURE_OBJECT_PARAMETERS",)),
        Honoured("location", ("AZURE_LOCATION",)),
        Honoured("custom_domain", ("AZURE_CUSTOM_DOMAIN",)),
        Honoured("querystring_expire", ("AZURE_URL_EXPIRATION_SECS",), ("expiration_secs",)),
        Honoured("file_overwrite", ("AZURE_OVERWRITE_FILES",), ("overwrite_files",)),
        Honoured("timeout", ("AZURE_CONNECTION_TIMEOUT_SECS",)),
        Honoured("max_memory_size", ("AZURE_BLOB_MAX_MEMORY_SIZE",)),
        Honoured("multipart_concurrency", ("AZURE_UPLOAD_MAX_CONN",), ("upload_max_conn",)),
        Honoured("default_content_type"),
    ),
    refused=(
        Refused(
            "azure_ssl",
            "AZURE_SSL",
            "to talk plain HTTP, give endpoint an http:// URL.",
            (True,),
        ),
        Refused(
            "cache_control",
            "AZURE_CACHE_CONTROL",
            "put it in object_parameters: {'cache_control': ...}.",
        ),
        Refused(
            "endpoint_suffix",
            "AZURE_ENDPOINT_SUFFIX",
            "give endpoint='https://<account>.blob.<suffix>' instead.",
            ("core.windows.net",),
        ),
        Refused(
            "api_version",
            "AZURE_API_VERSION",
            "stowage's Azure client chooses the service version; remove it.",
        ),
        Refused(
            "client_options",
            "AZURE_CLIENT_OPTIONS",
            "use timeout, connect_timeout, max_retries and verify (connection_verify) "
            f"instead; for a proxy, {_PROXY}.",
            ({},),
        ),
    ),
)

_SFTP = BackendNames(
    backend="storages.backends.sftpstorage.SFTPStorage",
    honoured=(
        Honoured("host", ("SFTP_STORAGE_HOST",)),
        Honoured("params", ("SFTP_STORAGE_PARAMS",)),
        Honoured("interactive", ("SFTP_STORAGE_INTERACTIVE",)),
        Honoured("file_mode", ("SFTP_STORAGE_FILE_MODE",)),
        Honoured("directory_mode", ("SFTP_STORAGE_DIR_MODE",), ("dir_mode",)),
        Honoured("uid", ("SFTP_STORAGE_UID",)),
        Honoured("gid", ("SFTP_STORAGE_GID",)),
        Honoured("known_hosts", ("SFTP_KNOWN_HOST_FILE",), ("known_host_file",)),
        Honoured("root_path", ("SFTP_STORAGE_ROOT",)),
        Honoured("base_url", ("SFTP_BASE_URL",)),
    ),
)

_FTP = BackendNames(
    backend="storages.backends.ftp.FTPStorage",
    honoured=(
        Honoured("location", ("FTP_STORAGE_LOCATION",)),
        Honoured("encoding", ("FTP_STORAGE_ENCODING",)),
        Honoured("base_url", ("BASE_URL",)),
        Honoured("file_overwrite", ("FTP_ALLOW_OVERWRITE",), ("allow_overwrite",)),
    ),
)

#: The table of each built-in driver, by driver name.
TABLES: Mapping[str, BackendNames] = {
    "s3": _S3,
    "gcs": _GCS,
    "azure": _AZURE,
    "sftp": _SFTP,
    "ftp": _FTP,
}


def _builtin_name(driver_class: type[Any]) -> str | None:
    from stowage.registry import BUILTIN_DRIVERS

    # By identity: a registered path may name a class where its package re-exports it.
    for cls in driver_class.__mro__:
        for name, spec in BUILTIN_DRIVERS.items():
            module, _, attribute = spec.path.partition(":")
            if getattr(sys.modules.get(module), attribute, None) is cls:
                return name
    return None


def names_for(driver_class: type[Any]) -> BackendNames:
    """Return the names ``driver_class`` honours and refuses.

    The table of the built-in driver it is (or derives from), plus the
    ``setting_fallbacks`` and ``option_aliases`` the class declares itself.
    """
    name = _builtin_name(driver_class)
    table = TABLES.get(name or "", BackendNames(backend=""))
    return BackendNames(
        backend=table.backend,
        honoured=table.honoured,
        refused=table.refused,
        extra_fallbacks=dict(getattr(driver_class, "setting_fallbacks", {})),
        extra_aliases=dict(getattr(driver_class, "option_aliases", {})),
    )
