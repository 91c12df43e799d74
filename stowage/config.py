"""Turn ``STORAGES[alias]["OPTIONS"]`` into frozen, typed, validated options.

Every option is a field of a frozen dataclass declared with :func:`option`,
which records its documentation, whether it is a secret (never shown in
``repr``, ``deconstruct()``, logs or messages) and the environment variable
it falls back to. A driver may also name, per option, the django-storages
global setting to read when OPTIONS lacks the key (``AWS_STORAGE_BUCKET_NAME``
…), so a project migrates by changing ``BACKEND`` alone.

Unknown keys and values of the wrong type raise
:class:`~stowage.exceptions.ConfigurationError` (an ``ImproperlyConfigured``)
naming the option and listing the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from django.conf import settings

from stowage.drivers.base import MiB
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = [
    "StorageOptions",
    "build_options",
    "option",
    "restore_secrets",
    "secret_names",
    "split_secrets",
    "unknown_options",
    "with_values",
]

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    secret: bool = False,
    env: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare one option: its default, documentation, secrecy and env variable."""
    metadata = {"doc": doc, "secret": secret, "env": env}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(
            default_factory=default_factory, metadata=metadata, repr=not secret
        )
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


@record
class StorageOptions:
    """Options the adapter itself understands, whatever the driver."""

    location: str = option("", doc="Prefix under which every name is stored.")
    file_overwrite: bool = option(
        False,
        doc="Replace an existing file on save instead of choosing another name.",
    )
    max_memory_size: int = option(
        4 * MiB,
        doc="Bytes a file being written keeps in memory before spilling to a temporary "
        "file (0 never spills, django-storages' meaning).",
    )
    read_buffer_size: int = option(
        64 * 1024,
        doc="Bytes fetched by the first read of a file; later sequential reads stream.",
    )
    base_url: str | None = option(
        None,
        doc="URL prefix for unsigned URLs of backends without their own "
        "(defaults to MEDIA_URL there). Must end with a slash.",
    )
    custom_domain: str | None = option(
        None,
        doc="Host (and optional path) of a CDN serving the files, used for URLs; "
        "a value starting with http:// or https:// keeps its own scheme.",
    )
    url_protocol: str = option("https:", doc="Scheme for custom-domain URLs.")
    querystring_auth: bool = option(
        True, doc="Sign URLs where the backend can; False gives public, unsigned URLs."
    )
    querystring_expire: int | dt.timedelta = option(
        3600, doc="How long a signed URL stays valid: seconds or a timedelta."
    )
    url_cache_size: int = option(
        0,
        doc="Signed URLs kept for reuse, least recently used dropped first (0: none). A URL "
        "is reused while at least half of its lifetime is left, so a page showing one file "
        "many times signs it once.",
    )
    default_content_type: str = option(
        "application/octet-stream",
        doc="Content type stored when none is given and none can be guessed from the name.",
    )

    @property
    def expire_seconds(self) -> int:
        """Return ``querystring_expire`` in seconds."""
        value = self.querystring_expire
        return int(value.total_seconds()) if isinstance(value, dt.timedelta) else value

    def __post_init__(self) -> None:
        if self.base_url is not None and not self.base_url.endswith("/"):
            raise ConfigurationError(
                f"Option 'base_url' must end with a slash, got {self.base_url!r}."
            )
        if self.max_memory_size < 0:
            raise ConfigurationError("Option 'max_memory_size' must be 0 or more.")
        if self.url_cache_size < 0:
            raise ConfigurationError("Option 'url_cache_size' must be 0 (no cache) or more.")
        for name, value in (
            ("read_buffer_size", self.read_buffer_size),
            ("querystring_expire", self.expire_seconds),
        ):
            if value <= 0:
                raise ConfigurationError(f"Option {name!r} must be positive.")
        if self.url_protocol not in ("http:", "https:"):
            raise ConfigurationError(
                f"Option 'url_protocol' must be 'http:' or 'https:', got {self.url_protocol!r}."
            )


def secret_names(*classes: type[Any]) -> frozenset[str]:
    """Return the names of the secret options of ``classes``."""
    return frozenset(
        f.name for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("secret")
    )


def split_secrets(options: T) -> tuple[T, dict[str, Any]]:
    """Return a copy of ``options`` with every secret set to None, and the secrets."""
    found = {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(options)  # type: ignore[arg-type]
        if f.metadata.get("secret") and getattr(options, f.name) is not None
    }
    return with_values(options, dict.fromkeys(found)), found


def restore_secrets(
    options: T,
    values: Mapping[str, Any] | None,
    fallbacks: Mapping[str, str],
    class_values: Mapping[str, Any] | None = None,
) -> T:
    """Put secrets back into ``options``: ``values`` when known, else the other sources.

    Without ``values`` (another process unpickled the options), each secret
    comes back as ``deconstruct()`` output does: from the storage class's
    attribute (``class_values``), its Django setting or environment
    variable, else None.
    """
    if values is None:
        values = {}
        for f in dataclasses.fields(options):  # type: ignore[arg-type]
            if not f.metadata.get("secret"):
                continue
            setting = fallbacks.get(f.name)
            if class_values and f.name in class_values:
                values[f.name] = class_values[f.name]
            elif setting and hasattr(settings, setting):
                values[f.name] = getattr(settings, setting)
            elif f.metadata.get("env") and os.environ.get(f.metadata["env"]):
                values[f.name] = os.environ[f.metadata["env"]]
    return with_values(options, values)


def with_values(options: T, values: Mapping[str, Any]) -> T:
    """Return a copy of ``options`` with fields replaced, without validating again."""
    copied = copy.copy(options)
    for name, value in values.items():
        object.__setattr__(copied, name, value)
    return copied


def unknown_options(given: Iterable[str], *classes: type[Any]) -> None:
    """Raise ``ConfigurationError`` for the first key no class of ``classes`` knows."""
    valid = {f.name for cls in classes for f in dataclasses.fields(cls)}
    for key in given:
        if key not in valid:
            raise ConfigurationError(
                f"Unknown storage option {key!r}. Valid options: {', '.join(sorted(valid))}."
            )


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("collections.abc.", "")


def _check_type(name: str, value: Any, annotation: Any) -> None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(annotation):
            try:
                _check_type(name, value, arm)
            except ConfigurationError:
                continue
            return
        # The type, never the value: the option may be a secret.
        raise ConfigurationError(
            f"Option {name!r} must be {_type_name(annotation)}; got {type(value).__name__}."
        )
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigurationError(
                f"Option {name!r} must be one of {', '.join(map(repr, choices))}; got {value!r}."
            )
        return
    if annotation is type(None):
        if value is not None:
            raise ConfigurationError(f"Option {name!r} must be None; got {type(value).__name__}.")
        return
    expected = origin or annotation
    if expected is Any:
        return
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if expected in (Mapping, dict):
        expected = Mapping
    if expected in (tuple, list):
        expected = (tuple, list)
    bad_bool = expected is int and isinstance(value, bool)
    if bad_bool or not isinstance(value, expected):
        raise ConfigurationError(
            f"Option {name!r} must be {_type_name(annotation)}; got {type(value).__name__}."
        )


def build_options(
    cls: type[T],
    given: Mapping[str, Any],
    *,
    setting_fallbacks: Mapping[str, str] | None = None,
) -> T:
    """Build ``cls`` from the ``given`` options, the fallbacks and the defaults.

    A value comes from ``given`` first; else from the Django setting that
    ``setting_fallbacks`` names for it; else from the option's environment
    variable (strings only); else the default. Every value is type-checked.
    """
    unknown_options(given, cls)
    hints = typing.get_type_hints(cls)
    fallbacks = setting_fallbacks or {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            value = given[f.name]
        elif f.name in fallbacks and hasattr(settings, fallbacks[f.name]):
            value = getattr(settings, fallbacks[f.name])
        elif f.metadata.get("env") and os.environ.get(f.metadata["env"]):
            value = os.environ[f.metadata["env"]]
        else:
            continue
        _check_type(f.name, value, hints[f.name])
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigurationError(f"Invalid options for {cls.__name__}: {exc}") from exc
