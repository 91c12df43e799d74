"""Faults injected between the Azure driver and Azurite (see _faults.FaultContract)."""

from __future__ import annotations

import pytest

from tests.reliability._faults import FaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestAzureFaults"]


class TestAzureFaults(FaultContract):
    @pytest.fixture
    def backend(self, backend_azure: Backend) -> Backend:
        return backend_azure
