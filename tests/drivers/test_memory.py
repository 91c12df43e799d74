"""The memory driver and MemoryStorage under the conformance kit."""

import uuid

import pytest

from stowage import MemoryStorage
from stowage.drivers.memory import MemoryDriver, MemoryOptions
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)


class TestMemoryDriver(DriverContract):
    @pytest.fixture
    def driver(self) -> MemoryDriver:
        return MemoryDriver(MemoryOptions())


class TestMemoryStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        # A namespace of its own per test, named so that a subclass built with
        # the same arguments (SubclassContract) reaches the same files.
        return MemoryStorage(namespace=uuid.uuid4().hex)
