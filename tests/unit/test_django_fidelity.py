"""Behaviours of Django's own storages that LocalStorage and MemoryStorage keep."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.test import override_settings

import stowage


def _upload(tmp_path: Path, data: bytes) -> TemporaryUploadedFile:
    with override_settings(FILE_UPLOAD_TEMP_DIR=str(tmp_path)):
        upload = TemporaryUploadedFile("photo.jpg", "image/jpeg", len(data), None)
    upload.write(data)
    upload.flush()
    return upload


def test_local_storage_moves_a_temporary_upload_into_place(tmp_path: Path) -> None:
    storage = stowage.LocalStorage(location=str(tmp_path / "media"), file_permissions_mode=0o640)
    upload = _upload(tmp_path, b"jpeg bytes")
    source = upload.temporary_file_path()
    inode = os.stat(source).st_ino
    with upload:
        assert storage.save("p.jpg", upload) == "p.jpg"
        assert not os.path.exists(source)
    stored = tmp_path / "media" / "p.jpg"
    assert stored.read_bytes() == b"jpeg bytes"
    assert os.stat(stored).st_ino == inode  # moved, not copied
    assert os.stat(stored).st_mode & 0o777 == 0o640


def test_a_moved_upload_never_replaces_a_taken_name(tmp_path: Path) -> None:
    storage = stowage.LocalStorage(location=str(tmp_path / "media"))
    with _upload(tmp_path, b"first") as first, _upload(tmp_path, b"second") as other:
        storage.save("p.jpg", first)
        second = storage.save("p.jpg", other)
    assert second != "p.jpg"
    assert (tmp_path / "media" / "p.jpg").read_bytes() == b"first"
    assert (tmp_path / "media" / second).read_bytes() == b"second"


def test_async_save_takes_the_upload_too(tmp_path: Path) -> None:
    storage = stowage.LocalStorage(location=str(tmp_path / "media"))
    with _upload(tmp_path, b"async") as upload:
        source = upload.temporary_file_path()
        assert asyncio.run(storage.asave("a.jpg", upload)) == "a.jpg"
        assert not os.path.exists(source)
    assert (tmp_path / "media" / "a.jpg").read_bytes() == b"async"


def test_memory_storage_removes_the_upload_and_remote_storages_keep_it(tmp_path: Path) -> None:
    with _upload(tmp_path, b"data") as upload, _upload(tmp_path, b"data") as kept:
        stowage.MemoryStorage().save("m.jpg", upload)
        assert not os.path.exists(upload.temporary_file_path())
        stowage.Storage(driver="memory").save("m.jpg", kept)
        assert os.path.exists(kept.temporary_file_path())


def test_local_storage_appends_and_updates_in_place(tmp_path: Path) -> None:
    storage = stowage.LocalStorage(location=str(tmp_path))
    with storage.open("log.txt", "w") as handle:
        handle.write("one\n")
    with storage.open("log.txt", "a") as handle:
        handle.write("two\n")
    with storage.open("log.txt", "r+b") as handle:
        handle.write(b"ONE")
    assert (tmp_path / "log.txt").read_text() == "ONE\ntwo\n"


def test_remote_storages_refuse_appending() -> None:
    with pytest.raises(ValueError, match="Unsupported mode 'ab'"):
        stowage.MemoryStorage().open("a.txt", "ab")


@pytest.mark.parametrize(("name", "part"), [("/tmp/..", ".."), ("..", ".."), (".", ".")])
def test_refusals_name_the_part_at_fault(name: str, part: str) -> None:
    with pytest.raises(SuspiciousFileOperation, match=f"Could not derive file name from '{part}'"):
        stowage.MemoryStorage().get_available_name(name)


def test_async_writes_spill_to_file_upload_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    real = tempfile.SpooledTemporaryFile

    def spy(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", spy)
    storage = stowage.MemoryStorage(max_memory_size=1024)

    async def write() -> None:
        async with storage.aopen("big.bin", "wb") as handle:
            await handle.write(b"x" * 4096)

    with override_settings(FILE_UPLOAD_TEMP_DIR=str(tmp_path)):
        asyncio.run(write())
    assert made == [str(tmp_path)]
    assert storage.size("big.bin") == 4096
