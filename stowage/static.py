"""Serve static files from any driver, and make Django's stock collectstatic fast.

``collectstatic`` asks its storage, file by file, whether the file exists and
when it changed, then deletes and saves it: two to five round trips per file,
and a fresh checkout (new mtimes) re-uploads everything. :class:`StaticStorage`
answers those questions from memory instead:

- **One listing.** The first question lists the whole destination once
  (size, ETag, modified time); ``exists``, ``listdir``, ``size`` and
  ``get_modified_time`` are then answered from it and kept current by this
  storage's own writes. A static storage assumes it is the only writer of
  its location while collectstatic runs.
- **Content, not clocks.** Every upload records the file's SHA-256 in an
  index object stored beside the files (``.stowage/static-index.json``) and
  in the object's metadata. S3 ETags are no content hash for multipart or
  SSE-KMS objects, which is why comparing ETags re-uploads such files
  forever. While collectstatic runs, ``get_modified_time`` of a collected
  name reports the source file's own time when the stored copy has the same
  hash (so collectstatic skips it) and the epoch when it differs (so it is
  copied again). An index entry counts only while the listing shows the
  object with the size and ETag recorded at upload.
- **Parallel uploads.** ``save`` hashes and spools the content, then queues
  the upload on a bounded pool of ``upload_workers`` threads; ``flush()``
  waits for them. collectstatic's ``post_process`` flushes; with
  ``--no-post-process`` the queue is flushed when the process exits, and a
  failure there ends the process with status 1.
- **Headers.** Content-Type comes from the name; names carrying a content
  hash (``app.3f2a9c1b7d4e.css``) get ``hashed_cache_control`` (a year,
  immutable), the others ``cache_control``.

URLs are public (unsigned) by default: static files are meant to be served
to everyone. Django's manifest of hashed names is added by
:class:`stowage.static_manifest.ManifestStaticStorage`.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, ClassVar

from django.conf import settings
from django.core.files.base import ContentFile

from stowage import names
from stowage.config import option
from stowage.driver_calls import run
from stowage.drivers.base import ObjectInfo
from stowage.exceptions import ServiceError
from stowage.records import record
from stowage.saving import new_spool
from stowage.static_listing import Listing
from stowage.storage import Storage

logger = logging.getLogger("stowage.static")

__all__ = [
    "INDEX_NAME",
    "StaticOptions",
    "StaticStorage",
]

#: Where the content hashes of uploaded files are kept, inside ``location``.
INDEX_NAME = ".stowage/static-index.json"
_INDEX_DIR = INDEX_NAME.split("/", 1)[0]
_HASHED_NAME = re.compile(r"\.[0-9a-f]{12}(\.[^/]*)?$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CHUNK = 1 << 20


@record
class StaticOptions:
    """Options of the static storages, beside the adapter's and the driver's."""

    upload_workers: int | None = option(
        None,
        doc=(
            "Uploads run in parallel on this many threads; 0 uploads in save() itself. "
            "None: 8 where the driver waits on a network, 0 on local disk and in memory, "
            "where threads would only take turns."
        ),
    )
    cache_control: str | None = option(
        None, doc="Cache-Control of files whose names carry no content hash."
    )
    hashed_cache_control: str = option(
        "public, max-age=31536000, immutable",
        doc="Cache-Control of files whose names carry a content hash (manifest names).",
    )
    skip_unchanged: bool = option(
        True,
        doc=(
            "During collectstatic, skip files whose stored copy has the same content hash "
            "and, with a manifest, the hashing passes when no collected file changed."
        ),
    )

    def __post_init__(self) -> None:
        from stowage.exceptions import ConfigurationError

        if self.upload_workers is not None and self.upload_workers < 0:
            raise ConfigurationError("Option 'upload_workers' must be 0 or more.")


_RUNTIME_STATE = (
    "_state_lock",
    "_entries",
    "_index",
    "_index_dirty",
    "_index_payload",
    "_sources",
    "_source_hashes",
    "_pool",
    "_pending",
    "_failures",
    "_doomed",
    "_holding",
    "_synchronous",
)


def _sha256(handle: Any) -> str:
    digest = hashlib.sha256()
    for chunk in handle.chunks(_CHUNK):
        digest.update(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
    return digest.hexdigest()


class StaticStorage(Storage):
    """A static files storage over any driver, with a fast collectstatic.

    ``OPTIONS["driver"]`` picks the driver ("local" by default, then
    ``location`` defaults to STATIC_ROOT and ``base_url`` to STATIC_URL); the
    driver's options sit beside it. Files are overwritten in place and URLs
    are unsigned unless ``querystring_auth`` is set.
    """

    extra_options_classes: ClassVar[tuple[type[Any], ...]] = (StaticOptions,)

    def __init__(self, *, driver: str | None = None, **options: Any) -> None:
        options.setdefault("querystring_auth", False)
        options.setdefault("file_overwrite", True)
        if (driver or self.driver_name) == "local":
            # An empty location makes the local driver say STATIC_ROOT is missing.
            options.setdefault("location", settings.STATIC_ROOT or "")
            options.setdefault("base_url", settings.STATIC_URL)
        super().__init__(driver=driver, **options)
        self.static_options: StaticOptions = self.extra_options[0]
        given = self.static_options.upload_workers
        #: Upload threads: the option, else 8 where the driver waits on a network.
        self.upload_workers = (
            given if given is not None else 8 if self._driver_class.waits_on_network else 0
        )
        self._reset_state()

    def _reset_state(self) -> None:
        # Every attribute set here is listed in _RUNTIME_STATE.
        self._state_lock = threading.RLock()
        self._entries: Listing | None = None
        self._index: dict[str, dict[str, Any]] | None = None
        self._index_dirty = False
        self._index_payload = b""
        self._sources: dict[str, tuple[Any, str]] | None = None
        self._source_hashes: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, Future[None]] = {}
        self._failures: list[tuple[str, BaseException]] = []
        self._doomed: dict[str, tuple[ObjectInfo, dict[str, Any] | None]] = {}
        #: Saves kept back while the manifest storage post-processes (None: not holding).
        self._holding: dict[str, tuple[IO[bytes], str, int]] | None = None
        self._synchronous = self.upload_workers == 0

    def __getstate__(self) -> dict[str, Any]:
        # Locks, pools and caches belong to this process; _reset_state makes new ones.
        state = super().__getstate__()
        for name in _RUNTIME_STATE:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._reset_state()

    # -- the listing and the index --------------------------------------------------

    def _listing(self) -> Listing:
        with self._state_lock:
            if self._entries is None:
                entries = Listing()
                for entry in self.driver.list(self._location, recursive=True):
                    if isinstance(entry, ObjectInfo):
                        name = names.name_from_key(self._location, entry.key)
                        entries[name] = entry
                self._entries = entries
            return self._entries

    def _hash_index(self) -> dict[str, dict[str, Any]]:
        with self._state_lock:
            if self._index is None:
                self._index = {}
                if INDEX_NAME in self._listing():
                    with self.open(INDEX_NAME, "rb") as handle:
                        self._index_payload = handle.read()
                    try:
                        stored = json.loads(self._index_payload)
                    except ValueError:
                        stored = {}
                    if isinstance(stored, dict) and stored.get("version") == 1:
                        self._index = dict(stored.get("files", {}))
            return self._index

    def _stored_hash(self, name: str) -> str | None:
        """Return the recorded SHA-256 of ``name`` if the stored object still matches it."""
        entry = self._hash_index().get(name)
        info = self._listing().get(name)
        if entry is None or info is None or info.size != entry.get("size"):
            return None
        if info.etag and entry.get("etag") and info.etag != entry["etag"]:
            return None
        sha = entry.get("sha256")
        return sha if isinstance(sha, str) else None

    def _write_index(self) -> None:
        with self._state_lock:
            if not self._index_dirty or self._index is None:
                return
            listing = self._listing()
            files = {name: e for name, e in sorted(self._index.items()) if name in listing}
            payload = json.dumps({"version": 1, "files": files}).encode()
            self._index_dirty = False
            if payload == self._index_payload:
                return
            self._index_payload = payload
        steps = self._put_steps(
            INDEX_NAME,
            io.BytesIO(payload),
            size=len(payload),
            content_type="application/json",
            cache_control="no-cache",
        )
        info = run(steps, self.driver)
        with self._state_lock:
            self._listing()[INDEX_NAME] = info

    # -- what collectstatic asks ---------------------------------------------------

    def exists(self, name: str) -> bool:
        """Tell from the listing whether ``name`` is a stored file or directory."""
        self.key(name, allow_empty=True)
        cleaned = names.clean_name(name, allow_empty=True)
        if not cleaned:
            return True
        listing = self._listing()
        return cleaned in listing or listing.holds_directory(cleaned)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """List ``path`` from the listing, hiding the hash index."""
        self.key(path, allow_empty=True)
        cleaned = names.clean_name(path, allow_empty=True)
        prefix = f"{cleaned}/" if cleaned else ""
        dirs: set[str] = set()
        files: list[str] = []
        for name in self._listing():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            head, sep, _ = rest.partition("/")
            if sep:
                dirs.add(head)
            else:
                files.append(head)
        if not cleaned:
            dirs.discard(_INDEX_DIR)
        return sorted(dirs), sorted(files)

    def size(self, name: str) -> int:
        """Return the size from the listing."""
        self.key(name)
        info = self._listing().get(names.clean_name(name))
        return info.size if info is not None else super().size(name)

    def _source_of(self, name: str) -> tuple[Any, str] | None:
        """Find the file collectstatic would copy to ``name``, through the finders."""
        with self._state_lock:
            if self._sources is None:
                from django.contrib.staticfiles.finders import get_finders

                sources: dict[str, tuple[Any, str]] = {}
                for finder in get_finders():
                    for path, storage in finder.list([]):
                        prefix = getattr(storage, "prefix", None)
                        target = os.path.join(prefix, path) if prefix else path
                        sources.setdefault(target.replace("\\", "/"), (storage, path))
                self._sources = sources
            return self._sources.get(name)

    def _source_sha(self, name: str, source: tuple[Any, str]) -> str:
        with self._state_lock:
            known = self._source_hashes.get(name)
        if known is None:
            storage, path = source
            with storage.open(path) as handle:
                known = _sha256(handle)
            with self._state_lock:
                self._source_hashes[name] = known
        return known

    def _local_copy(self, name: str) -> Any:
        """Open the collected source of ``name`` when the stored copy has the same bytes."""
        source = self._source_of(name)
        stored = self._stored_hash(name)
        if source is None or stored is None or stored != self._source_sha(name, source):
            return None
        storage, path = source
        return storage.open(path, "rb")

    def get_modified_time(self, name: str) -> dt.datetime:
        """Return the modified time; for collected names, say whether the content changed."""
        self.key(name)
        cleaned = names.clean_name(name)
        if self.static_options.skip_unchanged and cleaned in self._listing():
            source = self._source_of(cleaned)
            if source is not None:
                if self._source_sha(cleaned, source) == self._stored_hash(cleaned):
                    storage, path = source
                    source_time: dt.datetime = storage.get_modified_time(path)
                    return source_time
                return self._localize(_EPOCH, "modified times")
        info = self._listing().get(cleaned)
        if info is not None and info.modified is not None:
            return self._localize(info.modified, "modified times")
        return super().get_modified_time(name)

    # -- writes ------------------------------------------------------------------

    def _wait_for(self, name: str) -> None:
        with self._state_lock:
            pending = self._pending.get(name)
        if pending is not None:
            pending.result()

    def _save(self, name: str, content: Any) -> str:
        # Django's HashedFilesMixin writes hashed copies through _save: they
        # take the same queued, content-checked path as every other file.
        return self.save(name, content)

    def save(self, name: Any, content: Any, max_length: int | None = None) -> str:
        """Queue an upload of ``content`` to ``name``; unchanged content is not sent."""
        if name is None:
            name = content.name
        if not hasattr(content, "chunks"):
            content = (
                ContentFile(content.read(), name=name) if hasattr(content, "read") else content
            )
        cleaned = names.overwrite_name(names.clean_name(name), max_length)
        self.key(cleaned)
        spool, sha, size = self._spool_with_hash(content)
        if self._holding is not None:
            self._hold(cleaned, spool, sha, size)
            return cleaned
        self._store(cleaned, spool, sha, size)
        return cleaned

    def _hold(self, name: str, spool: IO[bytes], sha: str, size: int) -> None:
        """Keep a save for later: the manifest storage saves and deletes intermediates."""
        assert self._holding is not None
        with self._state_lock:
            listing = self._listing()
            held = self._holding.pop(name, None)
            if held is None and name in listing:
                self.delete(name)  # deferred: a later identical save revives it
            if held is not None:
                held[0].close()
            self._holding[name] = (spool, sha, size)
            listing[name] = ObjectInfo(key=self.key(name), size=size)

    def _release(self, name: str | None = None) -> None:
        """Store held saves (one, or all), as plain saves would have."""
        with self._state_lock:
            holding = self._holding or {}
            chosen = list(holding) if name is None else [name] if name in holding else []
            released = [(n, *holding.pop(n)) for n in chosen]
            for n, *_ in released:
                self._listing().pop(n, None)
        for n, spool, sha, size in released:
            self._store(n, spool, sha, size)

    def _store(self, cleaned: str, spool: IO[bytes], sha: str, size: int) -> None:
        if self.static_options.skip_unchanged and (
            self._stored_hash(cleaned) == sha or self._revive(cleaned, sha)
        ):
            spool.close()
            return
        self._wait_for(cleaned)
        with self._state_lock:
            # Uploading replaces the object: a deferred delete of it is moot.
            self._doomed.pop(cleaned, None)
        if self._synchronous:
            self._upload(cleaned, spool, sha, size)
            return
        with self._state_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.upload_workers, thread_name_prefix="stowage-static"
                )
                atexit.register(self._flush_at_exit)
            # Until the upload lands, the listing shows the file as it will be,
            # so exists() and listdir() answer as if the save were done.
            self._listing()[cleaned] = ObjectInfo(
                key=self.key(cleaned), size=size, modified=dt.datetime.now(dt.UTC)
            )
            future = self._pool.submit(self._upload, cleaned, spool, sha, size)
            self._pending[cleaned] = future
        future.add_done_callback(lambda done: self._settle(cleaned, done))

    def _open(self, name: str, mode: str = "rb") -> Any:
        # A held or queued file is read once it is stored.
        cleaned = names.clean_name(name)
        self._release(cleaned)
        self._wait_for(cleaned)
        if mode == "rb" and self._sources is not None:
            # While collecting, a stored file identical to its source is read
            # from the source: post-processing hashes every referenced file.
            local = self._local_copy(cleaned)
            if local is not None:
                return local
        return super()._open(name, mode)

    def _spool_with_hash(self, content: Any) -> tuple[IO[bytes], str, int]:
        spool: IO[bytes] = new_spool(self.options.max_memory_size)
        digest = hashlib.sha256()
        size = 0
        for chunk in content.chunks(_CHUNK):
            data = chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
            digest.update(data)
            spool.write(data)
            size += len(data)
        spool.seek(0)
        return spool, digest.hexdigest(), size

    def _upload(self, name: str, spool: IO[bytes], sha: str, size: int) -> None:
        hashed = _HASHED_NAME.search(name.rsplit("/", 1)[-1]) is not None
        cache_control = (
            self.static_options.hashed_cache_control
            if hashed
            else self.static_options.cache_control
        )
        try:
            steps = self._put_steps(
                name,
                spool,
                size=size,
                content_type=self.content_type_for(name, None),
                cache_control=cache_control,
                metadata={"sha256": sha},
            )
            info = run(steps, self.driver)
        finally:
            spool.close()
        with self._state_lock:
            self._listing()[name] = info
            self._hash_index()[name] = {"sha256": sha, "size": info.size, "etag": info.etag}
            self._index_dirty = True

    def _settle(self, name: str, future: Future[None]) -> None:
        with self._state_lock:
            if self._pending.get(name) is future:
                del self._pending[name]
            error = future.exception()
            if error is not None:
                if self._entries is not None:
                    self._entries.pop(name, None)
                logger.error("Uploading static file %r failed: %s", name, error)
                self._failures.append((name, error))

    def delete(self, name: str) -> None:
        """Delete ``name``: it is gone for this storage at once, on the service at flush.

        collectstatic deletes every file it is about to copy again, and the
        manifest storage deletes each processed file before saving it anew;
        deferring the deletion lets a save of the same content undo it
        without any request, and the rest are deleted in parallel by flush().
        """
        if not name:
            raise ValueError("The name must be given to delete().")
        self.key(name)
        cleaned = names.clean_name(name)
        self._wait_for(cleaned)
        with self._state_lock:
            held = (self._holding or {}).pop(cleaned, None)
            if held is not None:
                held[0].close()
                self._listing().pop(cleaned, None)
                return
            # A save of the recorded content revives it, if the object is still as uploaded.
            as_uploaded = self._stored_hash(cleaned) is not None
            info = self._listing().pop(cleaned, None)
            if info is None:
                return
            entry = self._hash_index().pop(cleaned, None)
            self._doomed[cleaned] = (info, entry if as_uploaded else None)
            self._index_dirty = True

    def _revive(self, name: str, sha: str) -> bool:
        """Undo a deferred delete of ``name`` if its stored content has hash ``sha``."""
        with self._state_lock:
            doomed = self._doomed.get(name)
            if doomed is None or doomed[1] is None or doomed[1].get("sha256") != sha:
                return False
            info, _ = self._doomed.pop(name)
            self._listing()[name] = info
            self._hash_index()[name] = doomed[1]
            return True

    def _delete_doomed(self) -> None:
        with self._state_lock:
            doomed, self._doomed = list(self._doomed), {}
        if not doomed:
            return
        keys = [self.key(name) for name in doomed]
        if self.upload_workers <= 1:
            for key in keys:
                self.driver.delete(key)
            return
        with ThreadPoolExecutor(
            self.upload_workers, thread_name_prefix="stowage-static-delete"
        ) as pool:
            list(pool.map(self.driver.delete, keys))

    def flush(self) -> None:
        """Wait for every queued upload, store the hash index, and report failures."""
        while True:
            with self._state_lock:
                pending = list(self._pending.values())
            if not pending:
                break
            for future in pending:
                future.exception()
        with self._state_lock:
            failures, self._failures = self._failures, []
        if failures:
            listed = ", ".join(repr(name) for name, _ in failures[:10])
            raise ServiceError(
                f"{len(failures)} static file upload(s) failed: {listed}"
            ) from failures[0][1]
        self._delete_doomed()
        self._write_index()

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception as exc:
            import sys

            print(f"stowage: {exc}", file=sys.stderr)
            os._exit(1)

    def post_process(
        self, paths: dict[str, Any], dry_run: bool = False, **options: Any
    ) -> Iterator[tuple[str, str, bool]]:
        """Finish collectstatic's uploads (called by collectstatic after copying)."""
        if not dry_run:
            self.flush()
        yield from ()
