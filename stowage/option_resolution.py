"""Gather a storage's options and hand each to the dataclass that declares it.

Options come from the constructor's keywords (``OPTIONS``), then class
attributes of a project's subclass, then django-storages' settings, then
the defaults; django-storages' spellings of an option are accepted, and
its names stowage does not take are refused. The option dataclasses are the
driver's, the adapter's (:class:`~stowage.config.StorageOptions`) and a
storage class's own (``extra_options_classes``), in that order: each option
goes to the first that declares it, so a driver that declares ``location``
(the local filesystem root) owns it; for the others it is the key prefix the
adapter adds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from stowage.config import StorageOptions, build_options, secret_names, unknown_options
from stowage.django_storages import names_for
from stowage.drivers.base import Driver, DriverOptions
from stowage.exceptions import ConfigurationError
from stowage.records import record
from stowage.subclassing import class_options

__all__ = ["ResolvedOptions", "resolve_options"]


@record
class ResolvedOptions:
    """A storage's options, each in the dataclass that declares it."""

    #: The driver's options.
    driver: DriverOptions
    #: The adapter's options.
    storage: StorageOptions
    #: The options of the storage class's ``extra_options_classes``, in order.
    extra: tuple[Any, ...]
    #: Options never shown: the secret ones, under stowage's and django-storages' names.
    secrets: frozenset[str]


def _check_claims(driver_class: type[Driver[Any]]) -> None:
    """Refuse a driver whose options declare an adapter option it does not claim."""
    declared = {f.name for f in dataclasses.fields(driver_class.options_class)}
    adapter = {f.name for f in dataclasses.fields(StorageOptions)}
    shadowed = (declared & adapter) - driver_class.claimed_options
    if shadowed:
        raise ConfigurationError(
            f"{driver_class.__name__}'s options declare {sorted(shadowed)}, which the adapter "
            "owns: rename them, or list them in the driver's claimed_options to take them over."
        )


def resolve_options(
    storage_class: type[Any], driver_class: type[Driver[Any]], options: Mapping[str, Any]
) -> ResolvedOptions:
    """Return the options of a ``storage_class`` over ``driver_class`` given ``options``.

    An unknown option, or one given under two names, raises
    ``ImproperlyConfigured`` naming it.
    """
    # django-storages' names: the driver's table plus what the class declares.
    compat = names_for(driver_class)
    classes = (driver_class.options_class, StorageOptions, *storage_class.extra_options_classes)
    # Class attributes of a subclass configure it (django-storages' idiom);
    # OPTIONS and keywords win over them.
    from_class = class_options(storage_class, classes, compat.option_aliases, options)
    given = {**from_class, **options}
    fallbacks = compat.setting_fallbacks(storage_class.setting_fallbacks)
    # A django-storages name stowage does not take fails here, saying what to use.
    given = compat.accept(given, fallbacks)
    for alias, target in compat.option_aliases.items():
        if alias in given:
            if target in given:
                raise ConfigurationError(
                    f"Options {alias!r} and {target!r} mean the same; give only one."
                )
            given[target] = given.pop(alias)
    unknown_options(given, *classes)
    _check_claims(driver_class)
    built: list[Any] = []
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        mine = {k: v for k, v in given.items() if k in fields}
        built.append(build_options(cls, mine, setting_fallbacks=fallbacks))
        given = {k: v for k, v in given.items() if k not in fields}
    secret = secret_names(*classes)
    # A secret given under a django-storages spelling is as secret.
    aliases = {a for a, target in compat.option_aliases.items() if target in secret}
    return ResolvedOptions(
        driver=built[0],
        storage=built[1],
        extra=tuple(built[2:]),
        secrets=secret | aliases,
    )
