"""Faults injected between the GCS driver and fake-gcs-server (see _faults.FaultContract).

Beyond the contract: writes are retried too. A small body is sent again
whole, and an atomic create (``ifGenerationMatch=0``) whose first try was
stored before its answer was lost recognises its own object on the retry
instead of reporting the name taken; a large body's resumable upload
retries each of its requests, never reading the stream twice.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import Storage
from stowage.exceptions import AlreadyExists
from tests.faults.proxy import Fault, FaultProxy
from tests.reliability._faults import DATA, FAULTS, NAME, FaultContract, _read, bounded
from tests.reliability.conftest import Backend

__all__ = ["TestGCSFaults"]

#: The server gets the whole request, the client none of the answer.
LOST_ANSWER = Fault("reset_after", after=0)


class _OnePass:
    """A body that can be read once only, as a request's upload stream."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"p" * size


class TestGCSFaults(FaultContract):
    @pytest.fixture
    def backend(self, backend_gcs: Backend) -> Backend:
        return backend_gcs

    @pytest.mark.parametrize("fault", [*FAULTS, "lost-answer"])
    def test_atomic_create_survives_a_fault(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, fault: str
    ) -> None:
        storage = backend.through(proxy)
        injected = LOST_ANSWER if fault == "lost-answer" else FAULTS[fault]
        proxy.inject(injected)
        key = storage.key("faults/new.bin")
        raised = bounded(lambda: storage.driver.put(key, io.BytesIO(DATA), if_absent=True))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == [injected.kind]
        assert _read(direct, "faults/new.bin") == DATA

    def test_create_retried_onto_a_taken_name_still_finds_it_taken(
        self, backend: Backend, direct: Storage, proxy: FaultProxy
    ) -> None:
        storage = backend.through(proxy)
        proxy.inject(FAULTS["503"])
        key = storage.key(NAME)
        raised = bounded(lambda: storage.driver.put(key, io.BytesIO(b"other"), if_absent=True))
        assert isinstance(raised, AlreadyExists), repr(raised)
        assert proxy.injected == ["status"]
        assert _read(direct) == DATA

    def test_copy_to_a_free_name_survives_a_lost_answer(
        self, backend: Backend, direct: Storage, proxy: FaultProxy
    ) -> None:
        storage = backend.through(proxy)
        proxy.inject(LOST_ANSWER)
        driver = storage.driver
        raised = bounded(lambda: driver.copy_new(storage.key(NAME), storage.key("faults/copy.bin")))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == ["reset_after"]
        assert _read(direct, "faults/copy.bin") == DATA

    def test_a_retried_copy_knows_its_own_copy(self, backend: Backend, direct: Storage) -> None:
        # fake-gcs-server ignores ifGenerationMatch on rewrites, so the retry
        # above never meets a 412 here: the check it would make is tried alone.
        driver: Any = direct.driver
        source, copy = direct.key(NAME), direct.key("faults/copy.bin")
        assert driver._copied(source, copy) is None  # nothing there
        direct.save("faults/copy.bin", ContentFile(b"other"))
        assert driver._copied(source, copy) is None  # something else
        direct.delete("faults/copy.bin")
        driver.copy(source, copy)
        assert driver._copied(source, copy) is not None

    @pytest.mark.parametrize("fault", FAULTS)
    def test_resumable_upload_retries_its_requests_not_its_stream(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, fault: str
    ) -> None:
        storage = backend.through(proxy, **backend.multipart)
        proxy.inject(FAULTS[fault])
        key = storage.key("faults/large.bin")
        body = _OnePass(backend.multipart_size)
        raised = bounded(lambda: storage.driver.put(key, body))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == [FAULTS[fault].kind]
        assert _read(direct, "faults/large.bin") == b"p" * backend.multipart_size

    @pytest.mark.parametrize("fault", FAULTS)
    def test_streamed_upload_survives_a_fault(
        self, backend: Backend, direct: Storage, proxy: FaultProxy, fault: str
    ) -> None:
        """A large body of known size goes up in one request; a failed try resumes."""
        storage = backend.through(proxy, **backend.retrying)
        proxy.inject(FAULTS[fault])
        key = storage.key("faults/streamed.bin")
        data = bytes(range(256)) * (backend.multipart_size // 256)
        raised = bounded(lambda: storage.driver.put(key, io.BytesIO(data), size=len(data)))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == [FAULTS[fault].kind]
        assert _read(direct, "faults/streamed.bin") == data

    def test_streamed_upload_resumes_after_a_cut_mid_body(
        self, backend: Backend, direct: Storage, proxy: FaultProxy
    ) -> None:
        storage = backend.through(proxy, **backend.retrying)
        key = storage.key("faults/streamed.bin")
        data = bytes(range(256)) * (backend.multipart_size // 256)
        proxy.cut_after(len(data) // 2)
        raised = bounded(lambda: storage.driver.put(key, io.BytesIO(data), size=len(data)))
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert proxy.injected == ["cut"]
        assert _read(direct, "faults/streamed.bin") == data
