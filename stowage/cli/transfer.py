"""Copy a site's files from one storage to another: streamed, parallel, verified, resumable.

Each file is streamed: the source is read in chunks of at most 1 MiB and
handed to the destination as it is read, so memory stays bounded whatever
the file's size. Files are copied on a pool of threads (``jobs``).

What is verified, per file (``verify="checksum"``, the default):

* the bytes read equal the source's size (a body cut short is caught), and
  the destination reports the size that was sent;
* the content: the MD5 of the bytes sent is compared with the destination's
  ETag when that ETag is a plain MD5 (S3 single-part uploads, the memory
  driver); otherwise the destination is read back and its SHA-256 compared
  with the SHA-256 of the bytes sent.

``verify="size"`` checks sizes only. A copy that fails verification is
deleted from the destination and reported.

A destination file is skipped as already identical when its size is the
source's and, where a checksum is available, its checksum matches: both
ETags when both are plain MD5s, else the source's (or destination's) MD5
computed by reading it against the other side's MD5 ETag. With no checksum
on either side the destination must not be older than the source.
``size_only`` compares sizes alone. An interrupted run therefore resumes
where it stopped. (An ETag that looks like an MD5 but is not one, as with
S3 server-side KMS encryption, makes such files copy again each run.)

Destination names are exactly the source names (below the destination
prefix): a stowage destination is written with its driver's ``put``, which
replaces; any other Django storage first has the old file deleted, and a
save that picks another name is undone and reported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from django.core.files.base import File
from django.core.files.storage import Storage as DjangoStorage

from stowage.cli.diagnosis import describe, diagnose
from stowage.cli.listing import Entry, iter_entries, stat_entry
from stowage.cli.locations import Location
from stowage.cli.progress import Progress
from stowage.drivers.base import ChunkReader, Readable
from stowage.records import record
from stowage.storage import Storage

__all__ = [
    "Action",
    "HashingReader",
    "Transfer",
    "TransferError",
    "TransferReport",
    "decide",
    "md5_etag",
]

#: The most any single read asks of a source.
CHUNK = 1 << 20
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


class TransferError(Exception):
    """Report a copy that could not be completed or verified."""


def md5_etag(etag: str | None) -> str | None:
    """Return ``etag`` as an MD5 hex digest when it looks like one, else None."""
    if not etag:
        return None
    value = etag.strip().removeprefix("W/").strip('"').lower()
    return value if _MD5_HEX.fullmatch(value) else None


class HashingReader:
    """Pass reads through while counting the bytes and hashing them (SHA-256, MD5).

    ``size`` and ``content_type`` describe the source for the destination
    (Django's ``File.size``, stowage's content-type choice).
    """

    def __init__(
        self,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        on_read: Callable[[int], object] | None = None,
    ) -> None:
        self._stream = stream
        self._on_read = on_read
        self.size = size
        self.content_type = content_type
        self.count = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes of the source, hashed on the way."""
        data = self._stream.read(size)
        if data:
            self.count += len(data)
            self.sha256.update(data)
            self.md5.update(data)
            if self._on_read is not None:
                self._on_read(len(data))
        return data


class Action(enum.Enum):
    """What to do with one source file, decided from the two listings."""

    COPY = "copy"
    SKIP = "skip"
    #: Hash the source and compare it with the destination's MD5 ETag.
    HASH_SOURCE = "hash source"
    #: Hash the destination and compare it with the source's MD5 ETag.
    HASH_TARGET = "hash target"


def _seconds(moment: dt.datetime) -> int:
    # Whole seconds: S3 lists times truncated to the second. A naive time (a
    # storage with USE_TZ off) is local time, which timestamp() assumes.
    return int(moment.timestamp())


def decide(source: Entry, target: Entry | None, *, size_only: bool = False) -> Action:
    """Return whether ``source`` needs copying over ``target`` (None: absent)."""
    if target is None or target.size != source.size:
        return Action.COPY
    if size_only:
        return Action.SKIP
    source_md5, target_md5 = md5_etag(source.etag), md5_etag(target.etag)
    if source_md5 and target_md5:
        return Action.SKIP if source_md5 == target_md5 else Action.COPY
    if target_md5:
        return Action.HASH_SOURCE
    if source_md5:
        return Action.HASH_TARGET
    if (
        source.modified
        and target.modified
        and _seconds(target.modified) < _seconds(source.modified)
    ):
        return Action.COPY
    return Action.SKIP


@contextlib.contextmanager
def _opened(storage: DjangoStorage, name: str) -> Iterator[tuple[Readable, int | None, Any]]:
    """Open ``name`` for streaming: yield a reader, its size if known, and its info."""
    if isinstance(storage, Storage):
        download = storage.driver.get(storage.key(name))
        try:
            yield ChunkReader(download), download.info.size, download.info
        finally:
            download.close()
    else:
        with storage.open(name, "rb") as handle:
            yield handle, None, None


def _digest(storage: DjangoStorage, name: str, algorithm: str) -> str:
    """Return the hex digest of ``name``'s content, read in chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with _opened(storage, name) as (stream, _, _):
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@record(slots=True)
class _Job:
    source: Entry
    target_name: str
    existing: Entry | None
    action: Action


@dataclass
class TransferReport:
    """What a transfer did (or, dry, would do)."""

    copied: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    skipped: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: How many copies each method verified: "md5", "sha256" or "size".
    verified: Counter[str] = field(default_factory=Counter)


class Transfer:
    """Copy every file under ``source`` to the same relative name under ``target``.

    ``progress`` shows the counts and prints each line (failures as errors);
    ``verbose`` asks for a line per file copied or skipped. With ``delete``,
    destination files the source lacks are deleted after the copies.
    """

    def __init__(
        self,
        source: Location,
        target: Location,
        *,
        progress: Progress,
        jobs: int = 8,
        dry_run: bool = False,
        delete: bool = False,
        verify: Literal["checksum", "size"] = "checksum",
        size_only: bool = False,
        verbose: bool = False,
    ) -> None:
        if source.contains(target) or target.contains(source):
            raise TransferError(f"{source} and {target} overlap: a copy would copy its copies.")
        self.source, self.target = source, target
        self.progress = progress
        self.jobs, self.dry_run, self.delete = jobs, dry_run, delete
        self.verify, self.size_only, self.verbose = verify, size_only, verbose
        self.report = TransferReport()
        self._lock = threading.Lock()

    # -- planning ------------------------------------------------------------------

    def _files(self, location: Location) -> dict[str, Entry]:
        try:
            return {
                location.relative(entry.name): entry
                for entry in iter_entries(location.storage, location.prefix, recursive=True)
                if isinstance(entry, Entry)
            }
        except Exception as exc:
            raise TransferError(
                f"Could not list {location}: {describe(exc)}\nDiagnosis: {diagnose(exc)}"
            ) from exc

    def _plan(self) -> tuple[list[_Job], list[str]]:
        """Return the copies to consider and the destination names to delete."""
        sources = self._files(self.source)
        source_is_a_file = (
            not sources
            and self.source.prefix
            and stat_entry(self.source.storage, self.source.prefix) is not None
        )
        if source_is_a_file:
            raise TransferError(
                f"{self.source} is a file: cp and sync copy directories; name its directory."
            )
        targets = self._files(self.target)
        if self.delete and not sources and targets:
            # A mistyped source would otherwise empty the destination.
            raise TransferError(
                f"{self.source} has no files: refusing to delete all {len(targets)} files "
                f"of {self.target}."
            )
        jobs = []
        for relative, entry in sorted(sources.items()):
            existing = targets.get(relative)
            action = decide(entry, existing, size_only=self.size_only)
            if action is Action.SKIP:
                self._skipped(relative)
                continue
            jobs.append(_Job(entry, self.target.name(relative), existing, action))
        doomed = [self.target.name(r) for r in sorted(targets) if r not in sources]
        return jobs, doomed if self.delete else []

    # -- running -------------------------------------------------------------------

    def run(self) -> TransferReport:
        """Copy, then delete (sync), on the pool; return what was done."""
        jobs, doomed = self._plan()
        self.progress.start(len(jobs), sum(job.source.size for job in jobs))
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="stowage-copy")
        try:
            futures = {pool.submit(self._handle, job): job.source.name for job in jobs}
            self._drain(futures)
            futures = {pool.submit(self._remove, name): name for name in doomed}
            self._drain(futures)
        finally:
            # On an interrupt, drop what has not started instead of finishing it all.
            pool.shutdown(wait=True, cancel_futures=True)
            self.progress.close()
        return self.report

    def _drain(self, futures: dict[Any, str]) -> None:
        for future in as_completed(futures):
            try:
                future.result()
            except Exception as exc:
                self._failed(futures[future], exc)

    def _failed(self, name: str, exc: BaseException) -> None:
        reason = describe(exc)
        with self._lock:
            self.report.failed.append((name, reason))
        self.progress.note(f"FAILED {name}: {reason}", error=True)

    def _skipped(self, name: str) -> None:
        with self._lock:
            self.report.skipped += 1
        if self.verbose:
            self.progress.note(f"identical {name}")

    def _handle(self, job: _Job) -> None:
        try:
            if self._identical(job):
                self.progress.discount(job.source.size)
                self._skipped(job.target_name)
                return
            if self.dry_run:
                self.progress.note(f"would copy {job.source.name} -> {job.target_name}")
                self._copied(job.source.name, job.source.size, None)
                return
            method, size = self._copy(job)
        except Exception as exc:
            self._failed(job.source.name, exc)
            self.progress.file_done()
            return
        self._copied(job.source.name, size, method)
        if self.verbose:
            line = f"copied {job.source.name} -> {job.target_name} (verified: {method})"
            self.progress.note(line)

    def _copied(self, name: str, size: int, method: str | None) -> None:
        with self._lock:
            self.report.copied.append(name)
            self.report.bytes_copied += size
            if method is not None:
                self.report.verified[method] += 1
        self.progress.file_done()

    def _identical(self, job: _Job) -> bool:
        if job.action is Action.HASH_SOURCE:
            assert job.existing is not None
            expected = md5_etag(job.existing.etag)
            return _digest(self.source.storage, job.source.name, "md5") == expected
        if job.action is Action.HASH_TARGET:
            return _digest(self.target.storage, job.target_name, "md5") == md5_etag(job.source.etag)
        return False

    def _copy(self, job: _Job) -> tuple[str, int]:
        source, target = self.source.storage, self.target.storage
        with _opened(source, job.source.name) as (stream, size, info):
            reader = HashingReader(
                stream,
                size=job.source.size if size is None else size,
                content_type=getattr(info, "content_type", None) or job.source.content_type,
                on_read=self.progress.add_bytes,
            )
            written_size, etag = self._write(job.target_name, reader, info)
        try:
            return self._verified(job.target_name, reader, written_size, etag), reader.count
        except TransferError:
            with contextlib.suppress(Exception):
                target.delete(job.target_name)
            raise

    def _write(self, name: str, reader: HashingReader, info: Any) -> tuple[int, str | None]:
        target = self.target.storage
        if isinstance(target, Storage):
            written = target.driver.put(
                target.key(name),
                reader,
                size=reader.size,
                content_type=target.content_type_for(name, reader),
                cache_control=getattr(info, "cache_control", None),
                metadata=getattr(info, "metadata", None) or None,
            )
            return written.size, written.etag
        if target.exists(name):
            target.delete(name)
        # File needs only read() (and the size) of what it wraps.
        saved = target.save(name, File(cast(Any, reader), name))
        if saved != name:
            target.delete(saved)
            raise TransferError(f"the destination saved it as {saved!r} instead")
        return target.size(name), None

    def _verified(
        self, name: str, reader: HashingReader, written_size: int, etag: str | None
    ) -> str:
        if reader.size is not None and reader.count != reader.size:
            raise TransferError(
                f"read {reader.count} bytes of a {reader.size}-byte source "
                "(cut short, or changed during the copy)"
            )
        if written_size != reader.count:
            raise TransferError(
                f"the destination holds {written_size} bytes, {reader.count} were sent"
            )
        if self.verify == "size":
            return "size"
        if md5_etag(etag) == reader.md5.hexdigest():
            return "md5"
        if _digest(self.target.storage, name, "sha256") != reader.sha256.hexdigest():
            raise TransferError("the destination's content differs from the bytes sent (SHA-256)")
        return "sha256"

    def _remove(self, name: str) -> None:
        if self.dry_run:
            self.progress.note(f"would delete {name}")
        else:
            self.target.storage.delete(name)
            self.progress.note(f"deleted {name}")
        with self._lock:
            self.report.deleted.append(name)
