"""The local driver and LocalStorage under the conformance kit."""

from pathlib import Path

import pytest

from stowage import LocalStorage
from stowage.drivers.local import LocalDriver, LocalOptions
from stowage.testing import (
    AsyncStorageContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
)


class TestLocalDriver(DriverContract):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> LocalDriver:
        return LocalDriver(LocalOptions(location=str(tmp_path)))


class TestLocalStorage(StorageContract, AsyncStorageContract, HostileNamesContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(location=str(tmp_path / "media"), base_url="/media/")
