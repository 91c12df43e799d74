"""Parse ``ALIAS[:PREFIX]`` arguments into a configured storage and a directory in it."""

from __future__ import annotations

import posixpath
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.storage import Storage as DjangoStorage
from django.core.files.storage import storages
from django.core.management.base import CommandError

from stowage import names
from stowage.records import record

__all__ = ["Location", "backend_of", "parse_location"]


@record(slots=True)
class Location:
    """A directory (``prefix``, "" for the root) of the storage named ``alias``."""

    alias: str
    prefix: str
    storage: DjangoStorage

    def __str__(self) -> str:
        return f"{self.alias}:{self.prefix}" if self.prefix else self.alias

    def name(self, relative: str) -> str:
        """Return the storage name of ``relative`` inside this directory."""
        return posixpath.join(self.prefix, relative) if self.prefix else relative

    def relative(self, name: str) -> str:
        """Return ``name`` (inside this directory) relative to it."""
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def contains(self, other: Location) -> bool:
        """Tell whether ``other`` is this directory or lies inside it, on the same storage."""
        if other.alias != self.alias:
            return False
        return (
            not self.prefix
            or other.prefix == self.prefix
            or other.prefix.startswith(self.prefix + "/")
        )


def backend_of(alias: str) -> str:
    """Return the BACKEND configured for ``alias``."""
    config: Any = settings.STORAGES.get(alias, {})
    return str(config.get("BACKEND", "?"))


def parse_location(text: str) -> Location:
    """Return the location ``ALIAS[:PREFIX]`` names, or raise ``CommandError``."""
    alias, _, prefix = text.partition(":")
    if alias not in settings.STORAGES:
        known = ", ".join(sorted(settings.STORAGES)) or "none"
        raise CommandError(f"No storage {alias!r} in settings.STORAGES (configured: {known}).")
    try:
        prefix = names.clean_name(prefix, allow_empty=True)
    except SuspiciousFileOperation as exc:
        raise CommandError(f"Bad prefix in {text!r}: {exc}") from exc
    try:
        storage = storages[alias]
    except ImproperlyConfigured as exc:
        raise CommandError(f"Storage {alias!r} is misconfigured: {exc}") from exc
    return Location(alias, prefix, storage)
