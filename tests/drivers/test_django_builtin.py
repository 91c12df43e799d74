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
    known_deviations = _PARTIAL_FILES

    @pytest.fixture
    def storage(self, tmp_path: Path) -> FileSystemStorage:
        return FileSystemStorage(location=str(tmp_path), base_url="/media/")

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
    known_deviations = {
        **_PARTIAL_FILES,
        "test_open_for_write_replaces_content": "'wb' writes over the old bytes without truncating",
        "test_delete_without_a_name_raises": "delete('') and delete(None) are not refused",
        "test_modified_time_is_naive_without_use_tz": "returns aware times even without USE_TZ",
        "test_path_or_not_implemented": "path() returns a MEDIA_ROOT path that holds nothing",
    }

    @pytest.fixture
    def storage(self) -> InMemoryStorage:
        return InMemoryStorage(base_url="/media/")
