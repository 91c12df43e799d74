"""The local driver and LocalStorage under the conformance kit."""

from pathlib import Path

import pytest

from stowage import LocalStorage
from stowage.drivers.local import LocalDriver, LocalOptions
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)
from stowage.testing.hostile_names import Reach


class TestLocalDriver(DriverContract):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> LocalDriver:
        return LocalDriver(LocalOptions(location=str(tmp_path)))


class TestLocalStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        # Two levels below the directory the hostile-names tests watch.
        media = tmp_path / "reach" / "site" / "media"
        return LocalStorage(location=str(media), base_url="/media/")

    @pytest.fixture
    def hostile_reach(self, storage: LocalStorage, tmp_path: Path) -> Reach:
        return Reach(storage.driver, root=tmp_path / "reach", prefix="site/media")


def test_deleting_a_directory_removes_it_only_when_empty(tmp_path: Path) -> None:
    from django.core.files.base import ContentFile

    storage = LocalStorage(location=str(tmp_path))
    storage.save("full/a.txt", ContentFile(b"a"))
    (tmp_path / "empty").mkdir()
    storage.delete("full")
    storage.delete("empty")
    assert (tmp_path / "full" / "a.txt").read_bytes() == b"a"
    assert not (tmp_path / "empty").exists()


def test_writes_honour_permission_modes(tmp_path: Path) -> None:
    from django.core.files.base import ContentFile

    storage = LocalStorage(
        location=str(tmp_path), file_permissions_mode=0o640, directory_permissions_mode=0o750
    )
    storage.save("d/f.txt", ContentFile(b"x"))
    assert (tmp_path / "d" / "f.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def test_no_temporary_file_is_left_or_listed(tmp_path: Path) -> None:
    from django.core.files.base import ContentFile

    storage = LocalStorage(location=str(tmp_path))
    storage.save("a.txt", ContentFile(b"x"))
    storage.save("a.txt", ContentFile(b"y"))
    (tmp_path / ".stowage-tmp-leftover").write_bytes(b"crash")
    assert storage.listdir("")[1] == sorted(
        p.name for p in tmp_path.iterdir() if p.name.endswith(".txt")
    )
