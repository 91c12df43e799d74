"""Faults injected between the WebDAV driver and wsgidav (see _faults.FaultContract)."""

from __future__ import annotations

import pytest

from tests.reliability._faults import FaultContract
from tests.reliability.conftest import Backend

__all__ = ["TestWebDAVFaults"]


class TestWebDAVFaults(FaultContract):
    @pytest.fixture
    def backend(self, backend_webdav: Backend) -> Backend:
        return backend_webdav
