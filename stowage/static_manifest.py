"""Keep Django's manifest of hashed static names, over :class:`~stowage.static.StaticStorage`.

:class:`ManifestStaticStorage` is Django's ``ManifestFilesMixin`` on the fast
static storage: while Django's passes rename files by their content hash,
saves are held back, so only the names of the last pass are uploaded; the
manifest is written last, once every file it names is stored.

The manifest also records a fingerprint of what the passes worked from: each
collected file's name and content hash, and the settings, versions and code
that shape their output. When a later collectstatic finds the same
fingerprint and every hashed file of the manifest stored as uploaded, the
passes would write what is already there, so they are skipped
(``skip_unchanged``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.files.base import ContentFile

from stowage import names
from stowage.config import build_options, option
from stowage.records import record
from stowage.static import StaticOptions, StaticStorage

__all__ = ["SOURCES_KEY", "ManifestOptions", "ManifestStaticStorage"]

logger = logging.getLogger("stowage.static")

#: The manifest's key for the fingerprint of the files and settings it was made from.
SOURCES_KEY = "stowage_sources"


@record
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
        #: The fingerprint the stored manifest records, and this collect's (None: unknown).
        self._stored_fingerprint: str | None = None
        self._collected_fingerprint: str | None = None
        super().__init__(*args, **kwargs)

    def read_manifest(self) -> str | None:  # type: ignore[override]  # None: no manifest
        """Read the stored manifest as Django does, noting the fingerprint it records."""
        content: str | None = super().read_manifest()
        self._stored_fingerprint = None
        try:
            stored = json.loads(content) if content else None
        except ValueError:
            stored = None  # Django's load_manifest says what is wrong with it
        if isinstance(stored, dict) and isinstance(stored.get(SOURCES_KEY), str):
            self._stored_fingerprint = stored[SOURCES_KEY]
        return content

    def post_process(self, *args: Any, **kwargs: Any) -> Any:
        """Finish the copies, then hash and rewrite names as Django's manifest storage does.

        While Django's passes run, saves are held back: each pass saves a
        file under its name of the moment and deletes the name it replaces,
        so only the names that survive the last pass are uploaded. With the
        collected files and settings of the stored manifest, and its hashed
        files all stored, the passes are skipped: nothing is post-processed.
        """
        if kwargs.get("dry_run"):
            yield from super().post_process(*args, **kwargs)
            return
        self.flush()
        self._source_of("")  # know the sources, so reads of stored files stay local
        paths: Mapping[str, Any] = args[0] if args else kwargs["paths"]
        self._collected_fingerprint = self._fingerprint(paths)
        if self._unchanged(paths):
            logger.info("No collected file changed since the stored manifest: passes skipped.")
            yield from self._as_stored(paths)
            self.save_manifest()
            return
        self._holding = {}
        try:
            yield from super().post_process(*args, **kwargs)
        finally:
            self._release()
            self._holding = None

    def _fingerprint(self, paths: Mapping[str, Any]) -> str | None:
        """Hash what the passes work from: settings, and each collected file's content.

        Run after the copies are stored, so the index holds each one's
        content hash (None when one is unknown).
        """
        import django

        import stowage

        cls = type(self)
        shape = (
            f"django {django.get_version()}, stowage {stowage.__version__}, "
            f"{cls.__module__}.{cls.__qualname__}, version {self.manifest_version}, "
            f"passes {self.max_post_process_passes}, STATIC_URL {settings.STATIC_URL}, "
            f"js modules {getattr(self, 'support_js_module_import_aggregation', False)}, "
            f"patterns {getattr(self, '_patterns', None)!r}"
        )
        digest = hashlib.sha256(shape.encode())
        for source in _class_sources(cls):
            if source is None:
                return None
            digest.update(source)
        for name in sorted(names.clean_name(path) for path in paths):
            sha = self._stored_hash(name)
            if sha is None:
                return None
            digest.update(f"\n{name}\0{sha}".encode())
        return digest.hexdigest()

    def _unchanged(self, paths: Mapping[str, Any]) -> bool:
        """Tell whether the passes would store what the stored manifest already names."""
        if (
            not self.static_options.skip_unchanged
            or self.keep_intermediate_files
            or self._collected_fingerprint is None
            or self._collected_fingerprint != self._stored_fingerprint
        ):
            return False
        for path in paths:
            stored = self.hashed_files.get(self.hash_key(self.clean_name(path)))
            # Stored, and still as uploaded: the index's size and ETag match the listing.
            if stored is None or self._stored_hash(stored) is None:
                return False
        return True

    def _as_stored(self, paths: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
        for path in paths:
            yield path, self.hashed_files[self.hash_key(self.clean_name(path))], False

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
        if self._collected_fingerprint is not None:
            payload[SOURCES_KEY] = self._collected_fingerprint
        self._synchronous = True
        try:
            # save() skips an identical manifest and overwrites a changed one.
            self.save(self.manifest_name, ContentFile(json.dumps(payload).encode()))
        finally:
            self._synchronous = self.upload_workers == 0
        self.flush()


def _class_sources(cls: type) -> Iterator[bytes | None]:
    """Yield the source file of each class ``cls`` inherits from outside Django and stowage.

    A subclass's code may change what the passes write (None: a class whose file
    cannot be read, so nothing may be skipped).
    """
    for base in cls.__mro__:
        if base.__module__.partition(".")[0] in ("builtins", "django", "stowage"):
            continue
        try:
            with open(inspect.getfile(base), "rb") as handle:
                yield handle.read()
        except (OSError, TypeError):
            yield None
