"""Check a configured storage live: write, read back, url, delete, confirm gone.

Each step is timed. The first failure is diagnosed (credentials, missing
bucket, clock skew, connection, read-only …, see :mod:`stowage.cli.diagnosis`);
a file already written is still deleted when a later step fails. The write
step also says how a stowage storage creates a new name: atomically, or by
best effort where the server ignores conditional writes (S3's
``If-None-Match: *``) or they are turned off.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from django.core.files.base import ContentFile
from django.core.files.storage import Storage as DjangoStorage
from django.core.files.storage import storages

from stowage.cli.diagnosis import Diagnosis, describe, diagnose
from stowage.drivers.base import Capability
from stowage.records import record
from stowage.storage import Storage

__all__ = ["CheckResult", "Step", "check_storage"]

_T = TypeVar("_T")


@record(slots=True)
class Step:
    """One timed step: its name, "ok", "failed" or "skipped", and what it found."""

    name: str
    status: str
    ms: float
    detail: str = ""


@dataclass
class CheckResult:
    """The steps of one storage's check and, on failure, the diagnosis."""

    alias: str
    steps: list[Step] = field(default_factory=list)
    diagnosis: Diagnosis | None = None

    @property
    def ok(self) -> bool:
        """Tell whether no step failed."""
        return all(step.status != "failed" for step in self.steps)


class _Failed(Exception):
    """Stop the round trip: a step failed and was recorded."""


class _Mismatch(Exception):
    """Report a step that ran but found the storage misbehaving."""

    def __init__(self, message: str, diagnosis: Diagnosis) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


class _Run:
    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def step(
        self,
        name: str,
        action: Callable[[], _T],
        *,
        writing: bool = False,
        detail: Callable[[_T], str] | None = None,
    ) -> _T:
        """Run and time ``action``; record it, diagnose a failure and raise ``_Failed``."""
        started = time.perf_counter()
        try:
            value = action()
        except Exception as exc:
            ms = (time.perf_counter() - started) * 1000
            if isinstance(exc, _Mismatch):
                message, diagnosis = str(exc), exc.diagnosis
            else:
                message, diagnosis = describe(exc), diagnose(exc, writing=writing)
            self.result.steps.append(Step(name, "failed", ms, message))
            self.result.diagnosis = self.result.diagnosis or diagnosis
            raise _Failed from exc
        ms = (time.perf_counter() - started) * 1000
        self.result.steps.append(Step(name, "ok", ms, detail(value) if detail else ""))
        return value


def _shown_url(url: str | None) -> str:
    if url is None:
        return "none: the storage has no URLs"
    # A signed URL's query names the access key: show where it points, not the signature.
    base, signed, _ = url.partition("?")
    return f"{base} (signed)" if signed else base


def check_storage(alias: str) -> CheckResult:
    """Run the round trip on the storage ``alias`` and return what each step found."""
    result = CheckResult(alias)
    run = _Run(result)
    token = uuid.uuid4().hex
    payload = f"stowage check {token} {dt.datetime.now(dt.UTC).isoformat()}\n".encode()
    try:
        storage = run.step("configure", lambda: storages[alias])
        name = run.step(
            "write",
            lambda: storage.save(f"stowage-check-{token}.txt", ContentFile(payload)),
            writing=True,
            detail=lambda saved: f"{saved}{_creates(storage)}",
        )
    except _Failed:
        return result
    # A file was written: whatever fails next, still try to delete it.
    with contextlib.suppress(_Failed):
        run.step("read", lambda: _read_back(storage, name, payload), detail=str)
        run.step("url", lambda: _url(storage, name), detail=_shown_url)
    with contextlib.suppress(_Failed):
        run.step("delete", lambda: storage.delete(name), writing=True)
        run.step("gone", lambda: _confirm_gone(storage, name))
    return result


def _creates(storage: DjangoStorage) -> str:
    """Say how ``storage`` creates a new name, from what the write just found out."""
    if not isinstance(storage, Storage):
        return ""
    mode = getattr(storage.driver_options, "conditional_writes", None)
    found = getattr(storage.driver, "conditional_writes_honoured", None)
    honoured = found() if callable(found) else None
    if mode == "off":
        return " (creates: best effort, conditional_writes='off')"
    if honoured is False:
        return " (creates: best effort, the server ignores If-None-Match: *)"
    if honoured:
        return " (creates: atomic, the server honours If-None-Match: *)"
    if Capability.ATOMIC_CREATE in storage.driver.capabilities:
        return " (creates: atomic)"
    return " (creates: best effort, checked before writing)"


def _read_back(storage: DjangoStorage, name: str, payload: bytes) -> str:
    with storage.open(name, "rb") as handle:
        data: bytes = handle.read()
    if data != payload:
        raise _Mismatch(
            f"read back {len(data)} bytes that differ from the {len(payload)} written",
            Diagnosis("corrupted", "the storage returned other bytes than those written"),
        )
    return f"{len(data)} bytes match"


def _url(storage: DjangoStorage, name: str) -> str | None:
    try:
        return storage.url(name)
    except NotImplementedError:
        return None


def _confirm_gone(storage: DjangoStorage, name: str) -> None:
    if storage.exists(name):
        raise _Mismatch(
            f"{name!r} still exists after delete()",
            Diagnosis("delete ignored", "the storage kept a file that delete() removed"),
        )
