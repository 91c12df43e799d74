"""Faults on the FTP driver's connections to pyftpdlib: control (see _connections) and data.

In passive mode the server announces its own data port, so data
connections never pass through the fault proxy. Their faults are made by
the server itself (``ftpd_faulty``, see ``FTPServer.fault_data``): a
download cut at a byte of the file, with a clean close answered ``226`` (what
a client sees when the network cuts a connection after the server handed
it everything) or with a reset answered ``426``; an upload cut after some
bytes the same ways; a transfer that stops moving past the timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import FTPStorage, Storage
from stowage.drivers.ftp import TEMP_PREFIX
from stowage.exceptions import IncompleteRead, ServiceError, ServiceTimeout
from tests.reliability._connections import BIG, ConnectionFaultContract
from tests.reliability._faults import DATA, NAME, absent_or_complete, bounded
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend
from tests.servers.ftpd import FTPServer

__all__ = ["TestFTPConnectionFaults", "TestFTPDataConnectionFaults"]

#: Seconds a stalled data connection stays still: well past the storages' 1 s timeout.
STALL = 4.0
#: The server's fault for each of the contract's cut kinds.
HOW = {"truncate": "truncate", "reset_after": "reset"}


class TestFTPConnectionFaults(ConnectionFaultContract):
    @pytest.fixture
    def backend(self, backend_ftp: Backend) -> Backend:
        return backend_ftp

    # A cut "mid-reply" on the control connection never reaches its byte count
    # (replies are a few lines): bodies travel on data connections, whose cuts
    # TestFTPDataConnectionFaults makes.
    test_read_cut_midway_is_resumed_or_raises = None  # type: ignore[assignment]


class TestFTPDataConnectionFaults:
    """Faults on the data connections, made by a server told to misbehave."""

    @pytest.fixture
    def server(self, ftpd_faulty: FTPServer) -> Iterator[FTPServer]:
        """Return the faulty server, its data connections sound again after the test."""
        ftpd_faulty.clear_data_fault()
        yield ftpd_faulty
        ftpd_faulty.clear_data_fault()

    @pytest.fixture
    def root(self) -> str:
        """Return a fresh directory of the server's home."""
        return f"/t-{uuid.uuid4().hex[:12]}"

    def storage(self, server: FTPServer, root: str, **options: Any) -> Storage:
        """Return a storage on ``root`` with the reliability tests' 1 s timeout.

        Its first read asks for the whole file: a first window of 64 KiB would
        be abandoned after 64 KiB, and the server, sending ahead into socket
        buffers, could cut that abandoned transfer rather than the next one.
        """
        defaults = {"max_retries": 2, "timeout": 1.0, "read_buffer_size": 4 * 1024 * 1024}
        return FTPStorage(**server.options(root, **{**defaults, **options}))

    @pytest.fixture
    def direct(self, server: FTPServer, root: str) -> Storage:
        """Return a storage holding NAME and a 3 MiB file, written before any fault."""
        storage = FTPStorage(**server.options(root))
        assert storage.save(NAME, ContentFile(DATA)) == NAME
        assert storage.save("faults/big.bin", ContentFile(BIG)) == "faults/big.bin"
        return storage

    def read_big(self, storage: Storage) -> tuple[bytes | None, BaseException | None]:
        """Read faults/big.bin; return the bytes or what was raised."""
        result: list[bytes] = []

        def read() -> None:
            with storage.open("faults/big.bin") as handle:
                result.append(handle.read())

        raised = bounded(read)
        return (result[0] if result else None), raised

    def temp_files(self, server: FTPServer, root: str) -> list[str]:
        """Return the hidden temporary uploads left in the test's directory on disk."""
        directory = server.home / root.lstrip("/") / "faults"
        return [p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]

    # -- reads -------------------------------------------------------------------------

    @pytest.mark.parametrize("cut", [50_000, 1_500_000], ids=["early", "late"])
    @pytest.mark.parametrize("fault", ["truncate", "reset_after"])
    def test_read_cut_once_is_resumed_or_raises(
        self, server: FTPServer, root: str, direct: Storage, fault: str, cut: int
    ) -> None:
        storage = self.storage(server, root)
        server.fault_data("RETR", HOW[fault], cut)
        data, raised = self.read_big(storage)
        assert server.data_faults_fired() == [f"RETR {HOW[fault]} {cut}"]
        if raised is None:
            assert data == BIG, "a cut body was returned as if complete"
            outcome = "resumed"
        else:
            assert isinstance(raised, ServiceError), repr(raised)
            assert raised.__cause__ is not None
            outcome = "raised"
        # A clean close shows the cut by the length only, a reset by the error:
        # either way the reader asks for the rest (REST).
        assert outcome == "resumed"
        # The next read is whole.
        assert self.read_big(storage) == (BIG, None)
        FIGURES.add("reads cut mid-body", "ftp", f"{outcome} ({fault})")

    @pytest.mark.parametrize("fault", ["truncate", "reset_after"])
    def test_read_cut_on_every_attempt_raises(
        self, server: FTPServer, root: str, direct: Storage, fault: str
    ) -> None:
        storage = self.storage(server, root)
        server.fault_data("RETR", HOW[fault], 1_500_000, every=True)
        data, raised = self.read_big(storage)
        fired = server.data_faults_fired()
        assert data is None, "a cut body was returned as if complete"
        assert isinstance(raised, ServiceError), repr(raised)
        # Cut at byte 1,500,000, then resumed there at least twice and cut at
        # once (a reset may also cost the connection a retry of its own).
        assert isinstance(raised, IncompleteRead), repr(raised)
        assert set(fired) == {f"RETR {HOW[fault]} 1500000"}
        assert len(fired) >= 3
        table = "reads cut on every attempt"
        FIGURES.add(table, "ftp", f"raised {type(raised).__name__} ({fault})")
        FIGURES.add(table, "ftp", "data connections cut", len(fired))

    def test_read_stalled_past_the_timeout_raises_service_timeout(
        self, server: FTPServer, root: str, direct: Storage
    ) -> None:
        storage = self.storage(server, root, max_retries=0)
        server.fault_data("RETR", "stall", 1_500_000, seconds=STALL)
        data, raised = self.read_big(storage)
        assert server.data_faults_fired() == ["RETR stall 1500000"]
        assert data is None
        assert isinstance(raised, ServiceTimeout), repr(raised)
        assert raised.__cause__ is not None
        FIGURES.add("data connection stalled, ServiceTimeout", "ftp", "read")

    # -- uploads -----------------------------------------------------------------------

    @pytest.mark.parametrize("cut", [300_000, 2_000_000], ids=["early", "late"])
    @pytest.mark.parametrize("fault", ["reset", "truncate", "stall"])
    def test_upload_cut_on_its_data_connection_leaves_no_partial_object(
        self, server: FTPServer, root: str, direct: Storage, fault: str, cut: int
    ) -> None:
        storage = self.storage(server, root)
        server.fault_data("STOR", fault, cut, seconds=STALL)
        raised = bounded(lambda: storage.save("faults/new.bin", ContentFile(BIG)))
        fired = server.data_faults_fired()
        assert fired == [f"STOR {fault} {cut}"], "the fault did not hit the upload"
        assert isinstance(raised, ServiceError), repr(raised)
        if fault == "stall":
            assert isinstance(raised, ServiceTimeout), repr(raised)
        assert absent_or_complete(direct, "faults/new.bin", BIG) == "absent"
        assert direct.listdir("faults") == ([], ["big.bin", "object.bin"])
        table = "uploads cut on the data connection, no partial object"
        FIGURES.add(table, "ftp", f"{fault} ({type(raised).__name__})")
        FIGURES.add(table, "ftp", "temporary files left hidden", len(self.temp_files(server, root)))
