"""The memory driver and MemoryStorage under the conformance kit."""

import pytest

from stowage import MemoryStorage
from stowage.drivers.memory import MemoryDriver, MemoryOptions
from stowage.testing import (
    AsyncStorageContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
)


class TestMemoryDriver(DriverContract):
    @pytest.fixture
    def driver(self) -> MemoryDriver:
        return MemoryDriver(MemoryOptions())


class TestMemoryStorage(StorageContract, AsyncStorageContract, HostileNamesContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()
