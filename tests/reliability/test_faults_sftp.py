"""Faults on the connections between the SFTP driver and OpenSSH's sshd (see _connections)."""

from __future__ import annotations

import pytest

from tests.reliability._connections import ConnectionFaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestSFTPConnectionFaults"]


class TestSFTPConnectionFaults(ConnectionFaultContract):
    @pytest.fixture
    def backend(self, backend_sftp: Backend) -> Backend:
        return backend_sftp
