"""Faults injected between the S3 driver and moto (see _faults.FaultContract)."""

from __future__ import annotations

import pytest

from tests.reliability._faults import FaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestS3Faults"]


class TestS3Faults(FaultContract):
    @pytest.fixture
    def backend(self, backend_s3: Backend) -> Backend:
        return backend_s3
