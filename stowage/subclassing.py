"""Read what a project's subclass of a stowage storage says about itself.

Projects configure storages the way django-storages documents it, by
subclassing::

    class MediaStorage(stowage.S3Storage):
        location = "media"
        file_overwrite = False

and customise name choice through Django's documented hooks
(``get_available_name``, ``get_alternative_name``, ``_save`` …). This module
finds both: the options a subclass sets as class attributes (with
django-storages' alias names), the class attributes that name no option (a
system check reports them: a typo must not pass in silence), and the hooks a
subclass overrides, which decide how the adapter saves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from stowage.exceptions import ConfigurationError

__all__ = [
    "NAME_HOOKS",
    "class_options",
    "option_attributes",
    "overrides",
    "unknown_class_attributes",
]

#: Hooks through which a subclass takes over choosing the stored name.
NAME_HOOKS = ("get_available_name", "_save", "exists")


def _own_attributes(cls: type[Any]) -> Iterator[tuple[str, Any]]:
    """Yield the attributes set by the project's classes, nearest class first.

    Classes of stowage and Django themselves are skipped: their attributes
    are the library's, not configuration.
    """
    seen: set[str] = set()
    for klass in cls.__mro__:
        if _is_library(klass):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            yield name, value


def _is_library(klass: type[Any]) -> bool:
    module = klass.__module__
    return (
        klass is object
        or module in ("stowage", "django")
        or module.startswith(("stowage.", "django."))
    )


def _option_fields(classes: tuple[type[Any], ...]) -> set[str]:
    return {f.name for option_class in classes for f in dataclasses.fields(option_class)}


def class_options(
    cls: type[Any],
    option_classes: tuple[type[Any], ...],
    aliases: Mapping[str, str],
    given: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the options ``cls`` sets as class attributes and ``given`` does not.

    Keys are option names: a class attribute spelled as a django-storages
    alias counts as its option. An option ``given`` (constructor keyword or
    OPTIONS, under either spelling) wins over the class attribute.
    """
    given_targets = {aliases.get(key, key) for key in given}
    return {
        target: value
        for target, value in option_attributes(cls, option_classes, aliases).items()
        if target not in given_targets
    }


def option_attributes(
    cls: type[Any], option_classes: tuple[type[Any], ...], aliases: Mapping[str, str]
) -> dict[str, Any]:
    """Return every option the project's classes of ``cls`` set, by option name.

    An option named like a method of the storage (WebDAV's ``url``) cannot
    be a class attribute: it would hide the method, so it is refused.
    """
    fields = _option_fields(option_classes)
    found: dict[str, Any] = {}
    for name, value in _own_attributes(cls):
        target = aliases.get(name, name)
        if target not in fields or target in found:
            continue
        if isinstance(value, (property, staticmethod, classmethod)) or callable(value):
            continue
        if any(callable(vars(base).get(name)) for base in cls.__mro__ if _is_library(base)):
            raise ConfigurationError(
                f"{cls.__qualname__}.{name} hides the storage's method {name}(): give the "
                f"option {target!r} through OPTIONS or the constructor instead."
            )
        found[target] = value
    return found


def unknown_class_attributes(
    cls: type[Any], option_classes: tuple[type[Any], ...], aliases: Mapping[str, str]
) -> list[str]:
    """Return the class attributes of ``cls`` that are neither options nor library names.

    Methods and properties are overrides, not configuration, and names the
    library's classes define (``driver_name`` …) are known.
    """
    fields = _option_fields(option_classes)
    unknown = []
    for name, value in _own_attributes(cls):
        if name in fields or name in aliases:
            continue
        if isinstance(value, (property, staticmethod, classmethod)) or callable(value):
            continue
        if any(name in vars(base) for base in cls.__mro__ if _is_library(base)):
            continue
        unknown.append(name)
    return unknown


def overrides(obj: Any, hook: str) -> bool:
    """Tell whether a project's class in ``obj``'s ancestry defines the method ``hook``.

    stowage's own subclasses (static storages answer ``exists`` from a
    listing) keep the adapter's algorithm.
    """
    for klass in type(obj).__mro__:
        if hook in vars(klass):
            return not _is_library(klass)
    return False
