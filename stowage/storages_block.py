"""Write the ``STORAGES`` setting that puts the project's storages on stowage.

Django reads only ``STORAGES`` since 5.1: a project still setting the older
``DEFAULT_FILE_STORAGE`` or ``STATICFILES_STORAGE`` silently gets local
files. :func:`storages_block` writes the Python text of a ``STORAGES``
setting to paste into ``settings.py`` instead, built from those settings
where they are set and from the current ``STORAGES`` otherwise, with
django-storages' and Django's backends replaced by stowage's. The system
check ``stowage.E003`` and ``manage.py stowage settings`` both show it.

The django-storages global settings the project sets (``AWS_*``, ``GS_*``,
``AZURE_*``, ``SFTP_*``, ``FTP_*``) appear as OPTIONS under stowage's option
names. A secret never appears as a value: its line names the setting that
holds it (``"secret_key": AWS_S3_SECRET_ACCESS_KEY``), so the pasted text
reads it from ``settings.py`` itself.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from django.conf import DEFAULT_STORAGE_ALIAS, STATICFILES_STORAGE_ALIAS, settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from stowage.config import StorageOptions, secret_names
from stowage.django_storages import names_for
from stowage.records import record
from stowage.registry import load_driver

if TYPE_CHECKING:
    from stowage.storage import Storage

__all__ = [
    "LEGACY_STORAGE_SETTINGS",
    "STOWAGE_BACKENDS",
    "OptionLine",
    "StorageEntry",
    "class_path",
    "legacy_storage_settings",
    "render_storages",
    "storage_entries",
    "storages_block",
]

#: The settings Django replaced by ``STORAGES`` (ignored since 5.1), and the alias of each.
LEGACY_STORAGE_SETTINGS: Mapping[str, str] = {
    "DEFAULT_FILE_STORAGE": DEFAULT_STORAGE_ALIAS,
    "STATICFILES_STORAGE": STATICFILES_STORAGE_ALIAS,
}

_S3 = ("stowage.S3Storage", None)
_S3_STATIC = ("stowage.StaticStorage", "s3")
_S3_MANIFEST = ("stowage.ManifestStaticStorage", "s3")
_LOCAL = ("stowage.LocalStorage", None)
_MEMORY = ("stowage.MemoryStorage", None)

#: django-storages' and Django's storage classes (old and current paths) ->
#: (stowage's class, the ``driver`` option it needs or None).
STOWAGE_BACKENDS: Mapping[str, tuple[str, str | None]] = {
    "storages.backends.s3.S3Storage": _S3,
    "storages.backends.s3boto3.S3Boto3Storage": _S3,
    "storages.backends.s3.S3StaticStorage": _S3_STATIC,
    "storages.backends.s3boto3.S3StaticStorage": _S3_STATIC,
    "storages.backends.s3.S3ManifestStaticStorage": _S3_MANIFEST,
    "storages.backends.s3boto3.S3ManifestStaticStorage": _S3_MANIFEST,
    "storages.backends.gcloud.GoogleCloudStorage": ("stowage.GCSStorage", None),
    "storages.backends.azure_storage.AzureStorage": ("stowage.AzureStorage", None),
    "storages.backends.sftpstorage.SFTPStorage": ("stowage.SFTPStorage", None),
    "storages.backends.ftp.FTPStorage": ("stowage.FTPStorage", None),
    "django.core.files.storage.FileSystemStorage": _LOCAL,
    "django.core.files.storage.filesystem.FileSystemStorage": _LOCAL,
    "django.core.files.storage.InMemoryStorage": _MEMORY,
    "django.core.files.storage.memory.InMemoryStorage": _MEMORY,
    "django.contrib.staticfiles.storage.StaticFilesStorage": ("stowage.StaticStorage", None),
    "django.contrib.staticfiles.storage.ManifestStaticFilesStorage": (
        "stowage.ManifestStaticStorage",
        None,
    ),
}

#: Django's own option names that stowage spells differently.
_DJANGO_OPTION_NAMES = {"allow_overwrite": "file_overwrite"}
#: django-storages backends that overwrite a taken name by default (stowage does not).
_OVERWRITING = ("storages.backends.s3", "storages.backends.gcloud")
#: Options a static storage fixes itself, whatever the settings say (as django-storages'
#: static classes fix querystring_auth): listing the settings' values would change them.
_FIXED_BY_STATIC = frozenset({"querystring_auth", "file_overwrite"})
#: The comment of a line naming the setting that holds a secret.
_SECRET = "secret: the setting, not its value"
#: What an option name looks like when nothing says whether it is a secret.
_SECRET_LOOKING = re.compile(
    r"secret|password|passphrase|token|credential|key|sas|connection|params", re.IGNORECASE
)


@record
class OptionLine:
    """One line of an OPTIONS dict: a key, a Python expression, a comment."""

    key: str
    #: Python source of the value: a repr, or the name of a setting.
    code: str
    comment: str = ""
    #: True when the line is shown commented out, without its value (an option
    #: stowage refuses or does not know); the comment says what to do.
    disabled: bool = False
    #: The setting stowage reads this option from anyway, when the line repeats it.
    setting: str | None = None


@record
class StorageEntry:
    """One alias of the ``STORAGES`` to paste."""

    alias: str
    backend: str
    options: tuple[OptionLine, ...] = ()
    #: Comment lines written above the entry.
    notes: tuple[str, ...] = ()


def class_path(value: Any) -> str:
    """Return ``value`` as a dotted class path (a class given instead of its path included)."""
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def legacy_storage_settings() -> dict[str, str]:
    """Return the pre-5.1 storage settings the project still sets, with their class paths."""
    return {
        name: class_path(getattr(settings, name))
        for name in LEGACY_STORAGE_SETTINGS
        if hasattr(settings, name)
    }


def _is_literal(code: str) -> bool:
    try:
        ast.literal_eval(code)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _setting_holding(setting: str | None, value: Any) -> str | None:
    """Return ``setting`` if it is set to ``value`` (compared, never shown)."""
    if setting is None or not hasattr(settings, setting):
        return None
    try:
        same = bool(getattr(settings, setting) == value)
    except Exception:  # an odd __eq__ only means "not the same"
        return None
    return setting if same else None


def _secret_line(alias: str, key: str, value: Any, setting: str | None) -> OptionLine:
    """Name where the secret of ``key`` lives instead of showing it."""
    holder = _setting_holding(setting, value)
    if holder is not None:
        return OptionLine(key, holder, _SECRET, setting=holder)
    name = re.sub(r"\W", "_", f"STOWAGE_{alias}_{key}").upper()
    return OptionLine(key, name, f"secret, not shown: define {name} above")


def _value_line(key: str, value: Any, comment: str = "") -> OptionLine:
    code = repr(value)
    if not _is_literal(code):
        comment = f"{comment}; " if comment else ""
        comment += "not a literal: import what it needs"
    return OptionLine(key, code, comment)


def _known_base(path: str) -> str | None:
    """Return the django-storages or Django class that the class at ``path`` derives from."""
    try:
        cls = import_string(path)
    except ImportError:
        return None
    if not isinstance(cls, type):
        return None
    for base in cls.__mro__[1:]:
        if class_path(base) in STOWAGE_BACKENDS:
            return class_path(base)
    return None


def _kept_entry(alias: str, path: str, given: Mapping[str, Any]) -> StorageEntry:
    """Keep a class stowage does not replace, its options shown without secrets."""
    notes: list[str] = []
    base = _known_base(path)
    if base is not None:
        target = STOWAGE_BACKENDS[base][0]
        notes.append(f"{path} derives from {base}: derive it from {target} instead.")
    lines = []
    for key, value in given.items():
        if _SECRET_LOOKING.search(str(key)):
            lines.append(_secret_line(alias, str(key), value, None))
        else:
            lines.append(_value_line(str(key), value))
    return StorageEntry(alias, path, tuple(lines), tuple(notes))


def _stowage_class(path: str) -> type[Storage] | None:
    """Import ``path`` and return it if it is a stowage storage class."""
    from stowage.storage import Storage

    try:
        backend = import_string(path)
    except ImportError:
        return None
    return backend if isinstance(backend, type) and issubclass(backend, Storage) else None


def _stowage_entry(
    alias: str,
    source: str,
    target: str,
    backend: type[Storage],
    driver: str | None,
    given: Mapping[str, Any],
) -> StorageEntry:
    """Build the entry of ``backend`` (at ``target``) from ``given`` OPTIONS and the settings."""
    given = dict(given)
    if source.startswith("django."):
        given = {_DJANGO_OPTION_NAMES.get(k, k): v for k, v in given.items()}
    chosen = given.pop("driver", None) or driver
    lines = [OptionLine("driver", repr(chosen))] if chosen else []
    notes: list[str] = []
    driver_name = chosen if isinstance(chosen, str) else backend.driver_name
    try:
        driver_class = load_driver(driver_name)
    except ImproperlyConfigured as exc:
        # Without the driver its option tables are unknown: hide every value
        # that might be a secret, and say why no setting is listed.
        notes.append(f"{exc} Then run manage.py stowage settings again to see the OPTIONS.")
        kept = _kept_entry(alias, target, given)
        return StorageEntry(alias, target, (*lines, *kept.options), tuple(notes))
    classes = (driver_class.options_class, StorageOptions, *backend.extra_options_classes)
    valid = {f.name for cls in classes for f in fields(cls)}
    secret = secret_names(*classes)
    compat = names_for(driver_class)
    # The setting stowage reads for each option OPTIONS lack: the first one set.
    fallbacks = compat.setting_fallbacks(backend.setting_fallbacks)
    refused = compat.refused_options()
    static = issubclass(backend, _static_base())
    named: set[str] = set()
    for key, value in given.items():
        option = compat.option_aliases.get(key, key)
        named.add(option)
        if key in refused:
            lines.append(OptionLine(key, "", refused[key].instead, disabled=True))
        elif option not in valid:
            lines.append(
                OptionLine(key, "", "not a stowage option: see the migration guide", disabled=True)
            )
        elif option in secret:
            lines.append(_secret_line(alias, option, value, fallbacks.get(option)))
        else:
            lines.append(_value_line(option, value))
    for option, setting in fallbacks.items():
        if option in named or not hasattr(settings, setting):
            continue
        if static and option in _FIXED_BY_STATIC:
            continue
        value = getattr(settings, setting)
        if option in secret:
            lines.append(OptionLine(option, setting, _SECRET, setting=setting))
        elif not _is_literal(repr(value)):
            lines.append(
                OptionLine(option, setting, "not a literal: the setting itself", setting=setting)
            )
        else:
            lines.append(OptionLine(option, repr(value), setting, setting=setting))
        named.add(option)
    if source.startswith(_OVERWRITING) and not static and "file_overwrite" not in named:
        notes.append(
            "django-storages replaced a file saved under a taken name; stowage saves it "
            'under a new name unless "file_overwrite": True.'
        )
    return StorageEntry(alias, target, tuple(lines), tuple(notes))


def _static_base() -> type[Any]:
    # Loaded on demand: the static storages import django.contrib.staticfiles.
    from stowage.static import StaticStorage

    return StaticStorage


def _entry(alias: str, path: str, given: Mapping[str, Any]) -> StorageEntry:
    target, driver = STOWAGE_BACKENDS.get(path, (path, None))
    backend = _stowage_class(target)
    if backend is None:
        return _kept_entry(alias, path, given)
    return _stowage_entry(alias, path, target, backend, driver, given)


def storage_entries() -> list[StorageEntry]:
    """Return the ``STORAGES`` entries for the current settings, on stowage's classes.

    ``DEFAULT_FILE_STORAGE`` and ``STATICFILES_STORAGE`` give their alias
    where they are set; every other alias comes from ``STORAGES``.
    """
    current: Mapping[str, Any] = getattr(settings, "STORAGES", {}) or {}
    configs: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for alias, config in current.items():
        if isinstance(config, Mapping):
            options = config.get("OPTIONS") or {}
            configs[alias] = (
                class_path(config.get("BACKEND", "")),
                options if isinstance(options, Mapping) else {},
            )
    for name, path in legacy_storage_settings().items():
        configs[LEGACY_STORAGE_SETTINGS[name]] = (path, {})
    return [_entry(alias, path, options) for alias, (path, options) in configs.items()]


def _key(text: str) -> str:
    return f'"{text}"' if text.isidentifier() else repr(text)


def _wrap(text: str, *, indent: str = "") -> list[str]:
    """Return ``text`` as comment lines of at most 88 characters."""
    return textwrap.wrap(
        _comment(text), 88, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# "
    )


def _comment(text: str) -> str:
    # A class path or an error message must not end the comment early.
    return " ".join(text.split())


def render_storages(entries: list[StorageEntry], *, legacy: list[str] | None = None) -> str:
    """Return the Python text of ``STORAGES = {...}`` for ``entries``, with its comments."""
    legacy = legacy or []
    lines = [line for entry in entries for line in entry.options if not line.disabled]
    out: list[str] = []
    if legacy:
        replaced = " and ".join(legacy)
        out += _wrap(f"Delete {replaced}: Django ignores them since 5.1 and reads only STORAGES.")
    if any(not _is_literal(line.code) for line in lines):
        out += _wrap(
            "Names in capitals are settings of this settings.py, defined above STORAGES: "
            "a secret appears only as the name of the setting holding it, never as its value."
        )
    if any(line.setting for line in lines):
        out += _wrap(
            "stowage reads the AWS_*, GS_*, AZURE_*, SFTP_* and FTP_* settings anyway: the "
            "OPTIONS naming a setting are optional while that setting stays."
        )
    out.append("STORAGES = {")
    for entry in entries:
        out.append(f"    {_key(entry.alias)}: {{")
        for note in entry.notes:
            out += _wrap(note, indent="        ")
        plain = re.fullmatch(r"[\w.]+", entry.backend)
        backend = f'"{entry.backend}"' if plain else repr(entry.backend)
        out.append(f'        "BACKEND": {backend},')
        if entry.options:
            out.append('        "OPTIONS": {')
            for line in entry.options:
                comment = f"  # {_comment(line.comment)}" if line.comment else ""
                if line.disabled:
                    out.append(f"            # {_key(line.key)}: {_comment(line.comment)}")
                else:
                    out.append(f"            {_key(line.key)}: {line.code},{comment}")
            out.append("        },")
        out.append("    },")
    out.append("}")
    return "\n".join(out) + "\n"


def storages_block() -> str:
    """Return the ``STORAGES`` setting to paste for the current settings, as Python text."""
    return render_storages(storage_entries(), legacy=list(legacy_storage_settings()))
