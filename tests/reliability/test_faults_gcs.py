"""Faults injected between the GCS driver and fake-gcs-server (see _faults.FaultContract)."""

from __future__ import annotations

import pytest

from tests.reliability._faults import FaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestGCSFaults"]


class TestGCSFaults(FaultContract):
    @pytest.fixture
    def backend(self, backend_gcs: Backend) -> Backend:
        return backend_gcs
