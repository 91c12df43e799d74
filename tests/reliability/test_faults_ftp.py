"""Faults on the connections between the FTP driver and pyftpdlib (see _connections)."""

from __future__ import annotations

import pytest

from tests.reliability._connections import ConnectionFaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestFTPConnectionFaults"]


class TestFTPConnectionFaults(ConnectionFaultContract):
    @pytest.fixture
    def backend(self, backend_ftp: Backend) -> Backend:
        return backend_ftp
