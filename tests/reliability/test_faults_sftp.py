"""Faults on the connections between the SFTP driver and OpenSSH's sshd (see _connections)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.reliability._connections import ConnectionFaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestSFTPConnectionFaults", "TestSFTPOpenSSHConnectionFaults"]


class TestSFTPConnectionFaults(ConnectionFaultContract):
    @pytest.fixture
    def backend(self, backend_sftp: Backend) -> Backend:
        return backend_sftp


@pytest.mark.once  # as the storage contract over ssh: its driver's own tests run everywhere
class TestSFTPOpenSSHConnectionFaults(ConnectionFaultContract):
    """The same faults with client="openssh": ssh's pipes, and the STATs sent on them directly."""

    @pytest.fixture
    def backend(self, backend_sftp: Backend) -> Backend:
        make = backend_sftp.make
        return dataclasses.replace(
            backend_sftp,
            name="sftp-openssh",
            make=lambda endpoint, **options: make(endpoint, client="openssh", **options),
        )
