"""Faults injected between a storage and its real server, the same for every service.

A service's test module subclasses :class:`FaultContract` and supplies a
``backend`` fixture (see ``conftest.py``). Each test builds a fresh storage
through the fault proxy, so its first connection takes the injected fault,
and checks the outcome against the server directly:

- idempotent operations (size, exists, read, listdir, delete) survive one
  reset, 503, 500 or stall beyond the timeout, by retrying;
- persistent faults end in ServiceUnavailable after retries, a stall with
  retries off in ServiceTimeout: a clear error, never a hang;
- a body cut mid-stream (FIN or RST) is resumed, or raises a stowage error:
  never truncated data returned as complete;
- an upload cut on the wire or by its source leaves no partial object.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import Storage
from stowage.exceptions import ServiceError, ServiceTimeout, ServiceUnavailable
from tests.faults.proxy import Fault, FaultProxy
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend

__all__ = ["FaultContract", "SourceBreakContract"]

_MiB = 1024 * 1024
NAME = "faults/object.bin"
DATA = hashlib.sha256(b"stowage").digest() * (300_000 // 32)
#: Seconds a stalled response is held: well past the 1 s timeout of the test storages.
STALL = 4.0
#: A test that takes longer than this has hung (no timing is asserted below it).
HANG = 120.0

FAULTS = {
    "reset": Fault("reset"),
    "503": Fault("status", status=503),
    "500": Fault("status", status=500),
    "stall": Fault("stall", seconds=STALL),
}


def _read(storage: Storage, name: str = NAME) -> bytes:
    with storage.open(name) as handle:
        data: bytes = handle.read()
    return data


def _check_size(storage: Storage, direct: Storage) -> None:
    assert storage.size(NAME) == len(DATA)


def _check_exists(storage: Storage, direct: Storage) -> None:
    assert storage.exists(NAME)


def _check_read(storage: Storage, direct: Storage) -> None:
    assert _read(storage) == DATA


def _check_listdir(storage: Storage, direct: Storage) -> None:
    assert storage.listdir("faults") == ([], ["object.bin"])


def _check_delete(storage: Storage, direct: Storage) -> None:
    storage.delete(NAME)
    assert not direct.exists(NAME)


def _save(storage: Storage, direct: Storage) -> None:
    storage.save("faults/new.bin", ContentFile(DATA))


OPERATIONS: dict[str, Callable[[Storage, Storage], None]] = {
    "size": _check_size,
    "exists": _check_exists,
    "read": _check_read,
    "listdir": _check_listdir,
    "delete": _check_delete,
}


def bounded(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` on a thread; return what it raised, failing if it hangs."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert not thread.is_alive(), f"still running after {HANG} s: it hangs"
    return raised[0] if raised else None


def absent_or_complete(direct: Storage, name: str, data: bytes) -> str:
    """Assert ``name`` is missing or holds all of ``data``; say which."""
    if not direct.exists(name):
        return "absent"
    assert _read(direct, name) == data, f"{name} holds a partial object"
    return "complete"


class _BreakingSource:
    """A body that fails after ``limit`` bytes, as a client upload cut midway."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        if self.sent >= self.limit:
            raise OSError("the source broke mid-stream")
        size = self.limit - self.sent if size < 0 else min(size, self.limit - self.sent)
        self.sent += size
        return b"u" * size


class SourceBreakContract:
    """Uploads whose source fails midway, on any service; subclasses supply ``backend``."""

    @pytest.fixture
    def backend(self) -> Backend:
        """Return the backend under test; subclasses override this."""
        raise NotImplementedError("supply a 'backend' fixture")

    @pytest.fixture
    def direct(self, backend: Backend) -> Storage:
        """Return a storage on the server directly, holding NAME."""
        raise NotImplementedError("supply a 'direct' fixture")

    @pytest.mark.parametrize("if_absent", [False, True], ids=["overwrite", "create"])
    @pytest.mark.parametrize("large", [False, True], ids=["single", "multipart"])
    def test_upload_broken_by_its_source_leaves_nothing(
        self, backend: Backend, direct: Storage, if_absent: bool, large: bool
    ) -> None:
        storage = backend.direct(**(backend.multipart if large else {}))
        total = backend.multipart_size if large else len(DATA)
        source = _BreakingSource(total - 100_000)
        key = storage.key("faults/broken.bin")
        raised = bounded(lambda: storage.driver.put(key, source, size=None, if_absent=if_absent))
        assert isinstance(raised, OSError), repr(raised)
        assert source.sent == total - 100_000, "the upload stopped before the break"
        assert not direct.exists("faults/broken.bin")
        assert direct.listdir("faults") == ([], ["object.bin"])
        assert direct.listdir("") == (["faults"], [])
        FIGURES.add(
            "uploads interrupted, no partial object",
            backend.name,
            "source multipart" if large else "source single",
        )


class FaultContract(SourceBreakContract):
    """Fault tests over one service reached over HTTP; subclasses supply ``backend``."""

    @pytest.fixture
    def direct(self, backend: Backend) -> Storage:
        """Return a storage on the server directly, holding NAME."""
        storage = backend.direct()
        assert storage.save(NAME, ContentFile(DATA)) == NAME
        return storage

    # -- idempotent operations ----------------------------------------------------

    @pytest.mark.parametrize("fault", FAULTS)
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_idempotent_operation_survives_a_fault(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, operation: str, fault: str
    ) -> None:
        storage = backend.through(proxy)
        proxy.inject(FAULTS[fault])
        raised = bounded(lambda: OPERATIONS[operation](storage, direct))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == [FAULTS[fault].kind]
        FIGURES.add("faults survived by retrying (idempotent operations)", backend.name, fault)

    @pytest.mark.parametrize("fault", ["reset", "503"])
    @pytest.mark.parametrize("operation", ["size", "read", "listdir", "delete"])
    def test_persistent_fault_ends_in_service_unavailable(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, operation: str, fault: str
    ) -> None:
        storage = backend.through(proxy, **backend.few_retries)
        proxy.inject(*[FAULTS[fault]] * 40)
        raised = bounded(lambda: OPERATIONS[operation](storage, direct))
        proxy.clear()
        assert isinstance(raised, ServiceUnavailable), repr(raised)
        assert raised.__cause__ is not None
        assert len(proxy.injected) >= 2, "gave up without retrying"
        assert direct.exists(NAME) or operation == "delete"
        FIGURES.add("persistent faults ending in a clear error", backend.name, fault)
        FIGURES.add(
            "persistent faults ending in a clear error",
            backend.name,
            "faults injected",
            len(proxy.injected),
        )

    @pytest.mark.parametrize("operation", [*OPERATIONS, "save"])
    def test_stall_past_the_timeout_raises_service_timeout(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, operation: str
    ) -> None:
        storage = backend.through(proxy, **backend.no_retries)
        proxy.inject(*[FAULTS["stall"]] * 3)
        check = _save if operation == "save" else OPERATIONS[operation]
        raised = bounded(lambda: check(storage, direct))
        proxy.clear()
        assert isinstance(raised, ServiceTimeout), repr(raised)
        if operation == "save":
            # The server may have stored it all before the reply stalled.
            absent_or_complete(direct, "faults/new.bin", DATA)
        FIGURES.add("stalls ending in ServiceTimeout (retries off)", backend.name, "stall")

    # -- bodies cut mid-stream ------------------------------------------------------

    @pytest.mark.parametrize("repeat", [1, 30], ids=["once", "every-time"])
    @pytest.mark.parametrize("cut", [20_000, 250_000], ids=["early", "late"])
    @pytest.mark.parametrize("fault", ["truncate", "reset_after"])
    def test_read_cut_midway_is_resumed_or_raises(
        self,
        backend: Backend,
        direct: Storage,
        proxy: FaultProxy,
        fault: str,
        cut: int,
        repeat: int,
    ) -> None:
        # One request for the whole body, so the cut lands inside it.
        options = backend.few_retries if repeat > 1 else {}
        storage = backend.through(proxy, read_buffer_size=_MiB, **options)
        proxy.inject(*[Fault(fault, after=cut)] * repeat)
        result: list[bytes] = []
        raised = bounded(lambda: result.append(_read(storage)))
        proxy.clear()
        assert proxy.injected, "no fault was injected"
        if raised is None:
            assert result == [DATA], "a cut body was returned as if complete"
            outcome = "resumed"
        else:
            assert isinstance(raised, ServiceError), repr(raised)
            outcome = "raised"
        if repeat == 1:
            assert outcome == "resumed"
        FIGURES.add("reads cut mid-body", backend.name, f"{outcome} ({fault})")

    # -- uploads ------------------------------------------------------------------------

    @pytest.mark.parametrize("fault", ["reset", "503", "stall"])
    def test_upload_cut_on_the_wire_leaves_no_partial_object(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, fault: str
    ) -> None:
        storage = backend.through(proxy, **backend.no_retries)
        # A reset comes after the proxy received up to 64 KiB of the 300 KB body.
        proxy.inject(*[FAULTS[fault]] * 5)
        raised = bounded(lambda: _save(storage, direct))
        proxy.clear()
        assert isinstance(raised, ServiceError), repr(raised)
        outcome = absent_or_complete(direct, "faults/new.bin", DATA)
        assert direct.listdir("faults")[1] in (["object.bin"], ["new.bin", "object.bin"])
        FIGURES.add("uploads interrupted, no partial object", backend.name, f"wire {fault}")
        FIGURES.add("uploads interrupted, no partial object", backend.name, outcome)
