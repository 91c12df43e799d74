"""Django's own storages under the conformance kit: proof the kit is backend-agnostic.

Where they fall short of the checklist, ``known_deviations`` records it; those
tests run and must fail, so a change in Django shows up here.
"""

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from stowage.testing import StorageContract, SubclassContract

_PARTIAL_FILES = {
    "test_interrupted_write_leaves_nothing": "writes go straight to the final file",
    "test_failed_save_leaves_nothing": "writes go straight to the final file",
}


class TestFileSystemStorage(StorageContract, SubclassContract):
    public_urls = True
    local_paths = True
    created_times = True
    accessed_times = True
    atomic_create = True
    # Django accepts control characters (the OS decides); stowage refuses them.
    rejects_control_characters = False
    signs_urls = False
    file_and_directory_coexist = False
    known_deviations = {
        **_PARTIAL_FILES,
        "test_written_name_appears_only_on_close": "open('wb') writes to the final path",
        "test_directory_names": "size() of a directory is the directory entry's size",
        "test_exists_raises_when_the_service_fails": "exists() is os.path.lexists",
    }

    @pytest.fixture
    def storage(self, tmp_path: Path) -> FileSystemStorage:
        return FileSystemStorage(location=str(tmp_path), base_url="/media/")

    @pytest.fixture
    def broken_storage(self, tmp_path: Path) -> FileSystemStorage:
        # A location below a regular file: every lookup fails with ENOTDIR.
        (tmp_path / "a-file").write_bytes(b"")
        return FileSystemStorage(location=str(tmp_path / "a-file" / "media"))

    @pytest.fixture
    def overwrite_storage(self, storage: FileSystemStorage) -> Any:
        return FileSystemStorage(
            location=storage.location, base_url="/media/", allow_overwrite=True
        )


class TestInMemoryStorage(StorageContract, SubclassContract):
    public_urls = True
    local_paths = False
    created_times = True
    accessed_times = True
    atomic_create = True
    rejects_control_characters = False
    signs_urls = False
    file_and_directory_coexist = False
    known_deviations = {
        **_PARTIAL_FILES,
        "test_open_for_write_replaces_content": "'wb' writes over the old bytes without truncating",
        "test_delete_without_a_name_raises": "delete('') and delete(None) are not refused",
        "test_modified_time_is_naive_without_use_tz": "returns aware times even without USE_TZ",
        "test_path_or_not_implemented": "path() returns a MEDIA_ROOT path that holds nothing",
        "test_reading_after_close_raises_value_error": "close() leaves the file open",
        "test_opened_file_name_size_and_mode": "opened files have no 'mode'",
        "test_directory_names": "delete() of a directory removes every file in it",
        "test_written_name_appears_only_on_close": "open('wb') creates the file at once",
        "test_exists_raises_when_the_service_fails": "held in memory: no service can fail",
    }

    @pytest.fixture
    def storage(self) -> InMemoryStorage:
        return InMemoryStorage(base_url="/media/")

    @pytest.fixture
    def broken_storage(self, storage: InMemoryStorage) -> InMemoryStorage:
        # Nothing can fail in memory: the storage itself, whose exists() never raises.
        return storage
