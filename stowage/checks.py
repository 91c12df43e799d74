"""Check the stowage storages of ``STORAGES`` when Django runs its system checks.

Every alias whose ``BACKEND`` is a :class:`stowage.Storage` (service classes,
static storages and subclasses alike) is built from its ``OPTIONS`` the way
Django builds it, driver included, so ``manage.py check`` reports what the
first request would otherwise fail on. Building makes no request: options
are plain values, drivers create their clients on first use, and a
manifest storage's manifest read is pointed at an empty in-memory storage.

========================  ==========================================================
``stowage.E001``          the driver's optional extra is not installed
``stowage.E002``          OPTIONS are invalid (unknown option, wrong type or value)
``stowage.E003``          DEFAULT_FILE_STORAGE / STATICFILES_STORAGE set (ignored since 5.1)
``stowage.W001``          signed URLs asked for, public URLs handed out
``stowage.W002``          SFTP accepts unknown host keys
``stowage.W003``          the default (media) storage gives unsigned URLs
``stowage.W004``          the static files storage gives no public URL
``stowage.W005``          saves are not atomic creates (conditional writes ignored or off)
``stowage.W006``          django-storages setting not read, or OPTIONS key of another meaning
``stowage.W007``          a storage subclass's class attribute configures nothing
``stowage.W008``          CORS rules stop direct uploads from the site (``check --deploy``)
``stowage.W009``          ``exists_by_listing=True`` set where exists() cannot be one listing
========================  ==========================================================

Checks that only read ``OPTIONS`` (W002) run even when the storage cannot be
built; the others need a built storage and stay silent when E001 or E002
already reported the alias. W009 lives in :mod:`stowage.exists_listing_check`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import DEFAULT_STORAGE_ALIAS, STATICFILES_STORAGE_ALIAS, settings
from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from stowage.config import StorageOptions, secret_names
from stowage.django_storages import names_for
from stowage.drivers.base import Capability
from stowage.exceptions import ConfigurationError, MissingDependency
from stowage.records import record
from stowage.registry import BUILTIN_DRIVERS, load_driver
from stowage.storage import Storage
from stowage.storages_block import LEGACY_STORAGE_SETTINGS, legacy_storage_settings, storages_block
from stowage.subclassing import unknown_class_attributes
from stowage.urls import UrlPolicy

__all__ = [
    "ConfiguredStorage",
    "check_class_attributes",
    "check_conditional_writes",
    "check_django_storages_settings",
    "check_legacy_storage_settings",
    "check_static_urls",
    "check_storage_options",
    "check_storage_security",
    "check_upload_cors",
    "configured_storages",
]


@record
class ConfiguredStorage:
    """One ``STORAGES`` alias whose backend is a stowage storage, built or failed."""

    alias: str
    backend: type[Storage]
    options: Mapping[str, Any]
    #: The storage built from ``options``; None when building failed.
    storage: Storage | None
    #: Why building failed (MissingDependency for E001, else E002).
    error: ImproperlyConfigured | None

    @property
    def label(self) -> str:
        """Return how messages name this alias: ``STORAGES['default']``."""
        return f"STORAGES[{self.alias!r}]"

    @property
    def driver_name(self) -> str:
        """Return the driver named by OPTIONS, else the backend's own."""
        driver = self.options.get("driver")
        return driver if isinstance(driver, str) and driver else self.backend.driver_name


def _stowage_backend(path: Any) -> type[Storage] | None:
    """Import ``path`` and return it if it is a stowage storage class."""
    if not isinstance(path, str):
        return None
    try:
        backend = import_string(path)
    except ImportError:
        # Not ours to report: Django raises it when the storage is first used.
        return None
    return backend if isinstance(backend, type) and issubclass(backend, Storage) else None


def _build(backend: type[Storage], options: Mapping[str, Any]) -> Storage:
    """Create ``backend`` and its driver from ``options`` without any request."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import InMemoryStorage

    kwargs = dict(options)
    if issubclass(backend, ManifestFilesMixin):
        # A manifest storage reads its manifest from the service when created.
        kwargs["manifest_storage"] = InMemoryStorage()
    storage = backend(**kwargs)
    storage.driver  # noqa: B018 - drivers check their own options, clients come later
    return storage


def configured_storages(alias: str | None = None) -> Iterator[ConfiguredStorage]:
    """Yield each ``STORAGES`` alias (or only ``alias``) served by a stowage storage, built."""
    storages: Mapping[str, Any] = getattr(settings, "STORAGES", {}) or {}
    for name, config in storages.items():
        if (alias is not None and name != alias) or not isinstance(config, Mapping):
            continue
        backend = _stowage_backend(config.get("BACKEND"))
        if backend is None:
            continue
        options = config.get("OPTIONS") or {}
        if not isinstance(options, Mapping):
            error = ConfigurationError(f"OPTIONS must be a dict, got {type(options).__name__}.")
            yield ConfiguredStorage(name, backend, {}, None, error)
            continue
        try:
            storage = _build(backend, options)
        except ImproperlyConfigured as exc:
            yield ConfiguredStorage(name, backend, options, None, exc)
        else:
            yield ConfiguredStorage(name, backend, options, storage, None)


def _install_hint(configured: ConfiguredStorage, error: MissingDependency) -> str:
    # The error says what to install when it knows (an extra, or a package of
    # an optional feature such as CloudFront signing); else the driver's extra.
    command = re.search(r"pip install ('[^']+'|\S+)", str(error))
    if command is not None:
        return f"Install it: {command[0]}"
    spec = BUILTIN_DRIVERS.get(configured.driver_name)
    if spec is not None and spec.extra is not None:
        return f"Install it: pip install 'django-stowage[{spec.extra}]'"
    return "Install the package named in the message, or choose another driver."


def _secret_values(configured: ConfiguredStorage) -> list[Any]:
    """Return the secret option values given to ``configured``, from OPTIONS or settings."""
    try:
        driver_class = load_driver(configured.driver_name)
    except ImproperlyConfigured:
        return []  # an error of load_driver never quotes an option
    classes = (
        driver_class.options_class,
        StorageOptions,
        *configured.backend.extra_options_classes,
    )
    secret = secret_names(*classes)
    compat = names_for(driver_class)
    aliases = compat.option_aliases
    values = [v for k, v in configured.options.items() if aliases.get(k, k) in secret]
    # Every setting that may hold a secret: the one read depends on which are set.
    candidates = {
        **compat.setting_candidates,
        **{o: (s,) for o, s in configured.backend.setting_fallbacks.items()},
    }
    values += [getattr(settings, s, None) for name in secret for s in candidates.get(name, ())]
    return [v for v in values if v]


def _without_secrets(text: str, configured: ConfiguredStorage) -> str:
    """Return ``text`` with every secret value of ``configured`` masked."""
    # Configuration errors should never quote a secret; a message printed on
    # every `manage.py` run makes sure of it once more.
    for value in _secret_values(configured):
        for shown in (repr(value), str(value)):
            text = text.replace(shown, "'***'")
    return text


def check_storage_options(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report stowage storages that cannot be built (E001, E002).

    E001: the driver's optional extra is not installed (its SDK cannot be
    imported); the message and hint give the ``pip install`` command.
    E002: ``OPTIONS`` hold an unknown option, a value of the wrong type or
    an invalid value, or the driver misses a required one (an S3 bucket);
    the message is the configuration error, which names the option.
    """
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        error = configured.error
        if isinstance(error, MissingDependency):
            messages.append(
                CheckError(
                    f"The storage's driver cannot be loaded: {error}",
                    hint=_install_hint(configured, error),
                    obj=configured.label,
                    id="stowage.E001",
                )
            )
        elif error is not None:
            messages.append(
                CheckError(
                    f"Invalid storage options: {_without_secrets(str(error), configured)}",
                    hint=f"Correct OPTIONS of {configured.label}; the message names the option.",
                    obj=configured.label,
                    id="stowage.E002",
                )
            )
    return messages


def _is_sftp(driver_name: str) -> bool:
    return driver_name in ("sftp", BUILTIN_DRIVERS["sftp"].path)


def _public_despite_signing(configured: ConfiguredStorage, storage: Storage) -> CheckMessage | None:
    """Return W001 when ``querystring_auth`` asks for signed URLs that url() cannot give."""
    options = storage.options
    if not options.querystring_auth:
        return None
    policy = UrlPolicy(storage)
    if policy.can_sign and policy.domain is not None and policy.sign_domain is None:
        hint = "Set querystring_auth=False if the files are meant to be public"
        if hasattr(storage.driver_options, "sign_custom_domain"):
            hint += ", sign_custom_domain=True if the domain checks the service's signatures"
        return CheckWarning(
            f"URLs on custom_domain {policy.domain!r} are not signed although "
            "querystring_auth is on: anyone with a link can read the file, for ever.",
            hint=hint + ", or remove custom_domain.",
            obj=configured.label,
            id="stowage.W001",
        )
    if not policy.can_sign and configured.options.get("querystring_auth") is True:
        return CheckWarning(
            f"querystring_auth=True, but the {configured.driver_name!r} driver cannot sign "
            "URLs: every URL (custom_domain, base_url or MEDIA_URL) is public and permanent.",
            hint="Serve the files through a view that checks permissions, or remove "
            "querystring_auth to state that the URLs are public.",
            obj=configured.label,
            id="stowage.W001",
        )
    return None


def check_storage_security(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report stowage storages whose files are more exposed than they look (W001-W003).

    W001: signed URLs are asked for (``querystring_auth``, on by default)
    but public ones are handed out, either because ``custom_domain`` is set
    and the driver cannot sign on it (url() then gives unsigned domain URLs,
    as django-storages does), or because ``querystring_auth=True`` is given
    to a driver that cannot sign at all. ``base_url`` alone is not reported:
    a driver that signs ignores it for file URLs.
    W002: an SFTP storage has ``accept_unknown_host_keys`` set, so it
    trusts any server key; read from OPTIONS, so it works whatever the
    state of the driver.
    W003: the default (media) storage has ``querystring_auth=False`` on a
    driver that could sign: uploads get permanent public URLs. A driver that
    cannot sign (local files under MEDIA_URL) is not reported: nothing was
    switched off.
    """
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        if _is_sftp(configured.driver_name) and configured.options.get("accept_unknown_host_keys"):
            messages.append(
                CheckWarning(
                    "The SFTP storage accepts unknown host keys: anyone between this "
                    "server and the SFTP server can pose as it and read the files and "
                    "the credentials.",
                    hint="Record the server's host key in a known_hosts file "
                    "(ssh-keyscan) and remove accept_unknown_host_keys.",
                    obj=configured.label,
                    id="stowage.W002",
                )
            )
        storage = configured.storage
        if storage is None:
            continue
        public = _public_despite_signing(configured, storage)
        if public is not None:
            messages.append(public)
        signs = Capability.SIGN in storage.driver.capabilities
        if (
            configured.alias == DEFAULT_STORAGE_ALIAS
            and signs
            and not storage.options.querystring_auth
        ):
            messages.append(
                CheckWarning(
                    "querystring_auth=False on the default storage: uploaded files get "
                    "unsigned, permanent URLs that anyone who has one can read.",
                    hint="Keep signed URLs for uploads (querystring_auth=True), or add "
                    "'stowage.W003' to SILENCED_SYSTEM_CHECKS if the media are public on purpose.",
                    obj=configured.label,
                    id="stowage.W003",
                )
            )
    return messages


def check_static_urls(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a stowage static files storage that gives no lasting public URL (W004).

    Pages, stylesheets and caches keep static URLs far longer than a signed
    URL lives, so the ``staticfiles`` alias must hand out unsigned URLs.
    W004 fires when its URLs are signed (``querystring_auth`` on, as on a
    plain service storage or forced on a :class:`stowage.StaticStorage`),
    or when nothing gives a public URL: no ``custom_domain``, no
    ``base_url`` and a driver without public URLs (they would fall back to
    MEDIA_URL).
    """
    for configured in configured_storages(STATICFILES_STORAGE_ALIAS):
        storage = configured.storage
        if storage is None:
            continue
        policy = UrlPolicy(storage)
        if policy.signs_by_default:
            lifetime = storage.options.expire_seconds
            return [
                CheckWarning(
                    "Static files get signed URLs, which expire: cached pages and "
                    f"stylesheets break after querystring_expire ({lifetime} s).",
                    hint="Use stowage.StaticStorage or stowage.ManifestStaticStorage (unsigned "
                    "by default) or set querystring_auth=False, and make the files "
                    "publicly readable.",
                    obj=configured.label,
                    id="stowage.W004",
                )
            ]
        has_public_url = (
            policy.domain is not None
            or storage.options.base_url is not None
            or Capability.PUBLIC_URL in storage.driver.capabilities
        )
        if not has_public_url:
            return [
                CheckWarning(
                    f"The {configured.driver_name!r} driver gives no public URL and neither "
                    "base_url nor custom_domain is set: static URLs would point under "
                    "MEDIA_URL, or url() would fail.",
                    hint="Set base_url (or custom_domain) to where the static files are served.",
                    obj=configured.label,
                    id="stowage.W004",
                )
            ]
    return []


def check_conditional_writes(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report stowage storages whose saves are not atomic creates (W005).

    W005 fires when ``conditional_writes="off"`` is set, or when this
    process already found (no check makes a request) that the storage's
    server ignores ``If-None-Match: *``: a save then checks the name just
    before it commits, and two simultaneous saves of one name can both win.
    Drivers that may meet such a server say what they found through
    ``conditional_writes_honoured()`` (None while unknown).
    """
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        storage = configured.storage
        if storage is None:
            continue
        mode = getattr(storage.driver_options, "conditional_writes", None)
        found = getattr(storage.driver, "conditional_writes_honoured", None)
        ignored = mode == "auto" and callable(found) and found() is False
        if mode != "off" and not ignored:
            continue
        why = (
            "conditional_writes='off'"
            if mode == "off"
            else "its server ignores If-None-Match: * (conditional_writes='auto' fell back)"
        )
        messages.append(
            CheckWarning(
                f"Saves are not atomic creates: {why}. A new name is checked just before "
                "the file is committed, so two simultaneous saves of one name can both "
                "win and one file is lost.",
                hint="Use a server that honours conditional writes and set "
                "conditional_writes='auto' (or 'require'), or add 'stowage.W005' to "
                "SILENCED_SYSTEM_CHECKS if saves never race.",
                obj=configured.label,
                id="stowage.W005",
            )
        )
    return messages


def check_legacy_storage_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report DEFAULT_FILE_STORAGE and STATICFILES_STORAGE, which Django ignores (E003).

    Django reads only ``STORAGES`` since 5.1, so a project still setting
    either one gets the ``STORAGES`` backend (local files by default)
    without a word. The hint is the ``STORAGES`` setting to paste, on
    stowage's classes, as ``manage.py stowage settings`` prints it; secrets
    appear in it only as the names of the settings holding them.
    """
    legacy = legacy_storage_settings()
    if not legacy:
        return []
    block = storages_block()
    storages: Mapping[str, Any] = getattr(settings, "STORAGES", {}) or {}
    messages: list[CheckMessage] = []
    for name, path in legacy.items():
        alias = LEGACY_STORAGE_SETTINGS[name]
        config = storages.get(alias)
        used = config.get("BACKEND") if isinstance(config, Mapping) else None
        instead = f"{used!r} from STORAGES[{alias!r}]" if used else f"no STORAGES[{alias!r}]"
        messages.append(
            CheckError(
                f"{name} = {path!r} is ignored: Django reads only STORAGES since 5.1, "
                f"so the {alias!r} storage is {instead}.",
                hint=f"Delete {name} and set STORAGES instead "
                f"(manage.py stowage settings prints it):\n{block}",
                obj=f"settings.{name}",
                id="stowage.E003",
            )
        )
    return messages


def check_django_storages_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report django-storages names a stowage storage does not take as they mean (W006).

    For each stowage storage of ``STORAGES``, W006 names every django-storages
    global setting of its backend that stowage does not read (``AWS_S3_PROXIES``
    …) and says what to use instead; a value that asks for what stowage does
    anyway (``AWS_S3_USE_SSL = True``) is not reported.
    """
    messages: list[CheckMessage] = []
    reported: set[str] = set()
    for configured in configured_storages():
        try:
            compat = names_for(load_driver(configured.driver_name))
        except ImproperlyConfigured:
            continue  # E001 or E002 already says why
        for name, refused in sorted(compat.refused_settings().items()):
            if name in reported or not hasattr(settings, name):
                continue
            if refused.is_harmless(getattr(settings, name)):
                continue
            reported.add(name)
            messages.append(
                CheckWarning(
                    f"Setting {name} of django-storages is not read by stowage.",
                    hint=refused.instead[:1].upper() + refused.instead[1:],
                    obj=f"settings.{name}",
                    id="stowage.W006",
                )
            )
    return messages


def check_class_attributes(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report class attributes of a storage subclass that configure nothing (W007).

    django-storages' idiom configures a storage by subclassing it
    (``location = "media"``); stowage reads every option that way. An
    attribute that names no option of that storage (a typo, or a
    django-storages setting stowage has under another name) would change
    nothing, so it is reported with the class, the attribute and the valid
    names.
    """
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        storage = configured.storage
        if storage is None:
            continue
        backend = type(storage)
        option_classes = (
            type(storage.driver_options),
            type(storage.options),
            *(type(extra) for extra in storage.extra_options),
        )
        compat = names_for(load_driver(storage._driver_name))
        refused = compat.refused_options()
        for attribute in unknown_class_attributes(backend, option_classes, compat.option_aliases):
            where = f"{backend.__module__}.{backend.__qualname__}.{attribute}"
            if attribute in refused:
                text = f"{where} is a django-storages option stowage does not take."
                hint = refused[attribute].instead
            else:
                text = f"{where} names no option of the {storage._driver_name!r} storage."
                hint = (
                    "Correct the name (the options are listed on the backend's documentation "
                    "page), or give the value through OPTIONS."
                )
            messages.append(
                CheckWarning(
                    f"{text} It configures nothing.",
                    hint=hint,
                    obj=configured.label,
                    id="stowage.W007",
                )
            )
    return messages


def check_upload_cors(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report cloud storages whose CORS rules stop direct uploads from the site (W008).

    A deployment check (``manage.py check --deploy``): it reads the rules
    from each service, one request per storage, with the storage's own
    credentials. W008 fires when ``STOWAGE_DIRECT_UPLOADS`` names
    ``CORS_ORIGINS``, a storage (other than the static files one) sends the
    browser straight to S3, GCS or Azure, and its service's rules do not let
    those origins send uploads as the widget does; W009 when they admit the
    uploads but not the header of the parts' checksums (S3's CRC32), which
    parts then go without. Rules that cannot be read
    (no permission, no account key, the service unreachable) are not
    reported: the check says nothing it does not know.
    """
    from stowage.uploads.config import upload_settings
    from stowage.uploads.sessions import CloudSession, session_for

    if not getattr(settings, "STOWAGE_DIRECT_UPLOADS", None):
        return []
    try:
        options = upload_settings()
    except ImproperlyConfigured:
        return []  # the upload views report it on first use
    origins = list(options.CORS_ORIGINS)
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        storage = configured.storage
        if not origins or storage is None or configured.alias == STATICFILES_STORAGE_ALIAS:
            continue
        session = session_for(storage, configured.alias, options)
        if not isinstance(session, CloudSession):
            continue
        try:
            missing = session.cors_gaps(origins)
            optional = None if missing else session.cors_gaps(origins, optional=True)
        except ConfigurationError:
            continue  # CORS_ORIGINS holds something that is not an origin
        if missing:
            what, found, code = "will be refused by the service's CORS rules", missing, "W008"
        elif optional:
            what = "send their parts without checksums: the service's CORS rules lack the header"
            found, code = optional, "W009"
        else:
            continue
        messages.append(
            CheckWarning(
                f"Direct uploads from the site {what}: " + "; ".join(found) + ".",
                hint=f"Run 'manage.py stowage cors {configured.alias} --apply' (or paste the "
                "rule it prints into the service's settings).",
                obj=configured.label,
                id=f"stowage.{code}",
            )
        )
    return messages
