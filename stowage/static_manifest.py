"""Keep Django's manifest of hashed static names, over :class:`~stowage.static.StaticStorage`.

:class:`ManifestStaticStorage` is Django's ``ManifestFilesMixin`` on the fast
static storage: while Django's passes rename files by their content hash,
saves are held back, so only the names of the last pass are uploaded; the
manifest is written last, once every file it names is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.files.base import ContentFile

from stowage.config import build_options, option
from stowage.static import StaticOptions, StaticStorage

__all__ = ["ManifestOptions", "ManifestStaticStorage"]


@dataclass(frozen=True)
class ManifestOptions:
    """Options of the manifest static storage."""

    manifest_strict: bool = option(
        True, doc="Raise ValueError for a name missing from the manifest, as Django does."
    )
    manifest_name: str = option("staticfiles.json", doc="Name of the manifest file.")


class ManifestStaticStorage(ManifestFilesMixin, StaticStorage):  # type: ignore[misc]
    """StaticStorage with Django's manifest of hashed names.

    The manifest is read from the storage once, when the storage is created,
    and written last, after every hashed file is uploaded, so no page ever
    names a file that is not there yet.
    """

    extra_options_classes = (StaticOptions, ManifestOptions)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        manifest = build_options(
            ManifestOptions,
            {k: kwargs[k] for k in ("manifest_strict", "manifest_name") if k in kwargs},
        )
        # ManifestFilesMixin reads the manifest in __init__, so these must be set first.
        self.manifest_strict = manifest.manifest_strict
        self.manifest_name = manifest.manifest_name
        super().__init__(*args, **kwargs)

    def post_process(self, *args: Any, **kwargs: Any) -> Any:
        """Finish the copies, then hash and rewrite names as Django's manifest storage does.

        While Django's passes run, saves are held back: each pass saves a
        file under its name of the moment and deletes the name it replaces,
        so only the names that survive the last pass are uploaded.
        """
        if kwargs.get("dry_run"):
            yield from super().post_process(*args, **kwargs)
            return
        self.flush()
        self._source_of("")  # know the sources, so reads of stored files stay local
        self._holding = {}
        try:
            yield from super().post_process(*args, **kwargs)
        finally:
            self._release()
            self._holding = None

    def save_manifest(self) -> None:
        """Store the held saves, flush, then write the manifest unless it is unchanged."""
        self._release()
        self._holding = None
        self.flush()
        if self.manifest_storage is not self:
            super().save_manifest()
            return
        listing = json.dumps(sorted(self.hashed_files.items())).encode()
        self.manifest_hash = self.file_hash("", ContentFile(listing)) or ""
        payload = {
            "paths": self.hashed_files,
            "version": self.manifest_version,
            "hash": self.manifest_hash,
        }
        self._synchronous = True
        try:
            # save() skips an identical manifest and overwrites a changed one.
            self.save(self.manifest_name, ContentFile(json.dumps(payload).encode()))
        finally:
            self._synchronous = self.upload_workers == 0
        self.flush()
