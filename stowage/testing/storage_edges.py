"""Check the edges of a storage's behaviour: odd inputs, odd names, odd moments.

Mixed into :class:`~stowage.testing.StorageContract`; each test uses its
``storage`` fixture (and ``overwrite_storage`` / ``broken_storage`` where
said). What differs between backends by design (a file and a directory of
one name, case and Unicode normalisation of names) is declared by class
attributes, and each backend is held to what it declares.
"""

from __future__ import annotations

import copy
import io
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import InMemoryUploadedFile, TemporaryUploadedFile

from stowage.testing.contract_helpers import DELIMITER_NAMES, read_back
from stowage.testing.report import CHECKED, REFUSED, record

__all__ = ["StorageEdgesContract"]

#: Seconds between two writes whose modified times must differ (services keep whole seconds).
_TICK = 1.1


def _failure(call: Callable[[], object]) -> OSError:
    """Return the OSError ``call`` raises (a service failure is one); fail if it returns."""
    try:
        result = call()
    except OSError as exc:
        return exc
    raise AssertionError(f"returned {result!r} instead of raising on a failed service")


class _GeneratorStream(io.RawIOBase):
    """A read-only, non-seekable stream over a generator of chunks (a streamed request body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            self._rest = next(self._chunks, b"")
            if not self._rest:
                return 0
        count = min(len(buffer), len(self._rest))
        buffer[:count] = self._rest[:count]
        self._rest = self._rest[count:]
        return count


class _UnreachableDriver:
    """Stand in for a driver whose service cannot be reached: every call raises."""

    def __init__(self, real: Any) -> None:
        self.capabilities = real.capabilities

    def __getattr__(self, name: str) -> Any:
        from stowage.exceptions import ServiceUnavailable

        def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise ServiceUnavailable(f"{name}(): the service cannot be reached (test double).")

        return unreachable


class StorageEdgesContract:
    """Edge behaviours every storage must have; see the module docstring."""

    #: Names differing only in case ("A.txt", "a.txt") are one name.
    case_insensitive_names: ClassVar[bool] = False
    #: Names differing only in Unicode normalisation (NFC "é", NFD "é") are one name.
    unicode_normalizes: ClassVar[bool] = False
    #: A file "a" and files under "a/" can both exist (object stores). None: from the
    #: driver (no REAL_DIRECTORIES capability); on a filesystem one refuses the other.
    file_and_directory_coexist: ClassVar[bool | None] = None

    @pytest.fixture
    def broken_storage(self, storage: Any) -> Any:
        """Return the storage with its service unreachable (a closed port, a stopped server).

        Network backends override this with a storage pointing at a closed
        port, so the driver's own error mapping is checked; by default a stowage
        storage gets a driver that raises ServiceUnavailable on every call.
        """
        from stowage.storage import Storage

        if not isinstance(storage, Storage):
            raise AssertionError(
                f"supply a 'broken_storage' fixture for {type(storage).__name__}: the "
                "storage with its service unreachable"
            )
        twin = copy.copy(storage)
        twin._driver = cast(Any, _UnreachableDriver(storage.driver))
        return twin

    # -- 2. reading after close ------------------------------------------------------------

    def test_reading_after_close_raises_value_error(self, storage: Any) -> None:
        """A closed file refuses reads with ValueError, as Python's files do."""
        name = storage.save("closed.txt", ContentFile(b"closed"))
        handle = storage.open(name, "rb")
        assert handle.read(3) == b"clo"
        handle.close()
        assert handle.closed
        with pytest.raises(ValueError, match="closed"):
            handle.read()
        with storage.open(name, "rb") as again:
            assert again.read() == b"closed"
        with pytest.raises(ValueError, match="closed"):
            again.read(1)
        record(self, "read after close", CHECKED, "ValueError")

    # -- 3. what save() takes ---------------------------------------------------------------

    def test_save_temporary_uploaded_file(self, storage: Any) -> None:
        """An upload Django spooled to disk (TemporaryUploadedFile) is stored whole."""
        data = os.urandom(300_000)
        upload = TemporaryUploadedFile("upload.bin", "application/octet-stream", len(data), None)
        try:
            upload.write(data)
            upload.seek(0)
            assert os.path.exists(upload.temporary_file_path())
            name = storage.save("uploads/upload.bin", upload)
        finally:
            upload.close()
        assert name == "uploads/upload.bin"
        assert read_back(storage, name) == data
        assert storage.size(name) == len(data)
        record(self, "save input kinds", CHECKED, "TemporaryUploadedFile")

    def test_save_in_memory_uploaded_file(self, storage: Any) -> None:
        """An upload Django kept in memory (InMemoryUploadedFile) is stored whole."""
        data = b"in memory " * 100
        upload = InMemoryUploadedFile(
            io.BytesIO(data), "file", "memory.txt", "text/plain", len(data), "utf-8"
        )
        name = storage.save("uploads/memory.txt", upload)
        assert read_back(storage, name) == data
        assert storage.size(name) == len(data)
        record(self, "save input kinds", CHECKED, "InMemoryUploadedFile")

    def test_save_generator_stream(self, storage: Any) -> None:
        """A File over a generator (a streamed body of unknown size) is stored whole."""
        parts = [os.urandom(70_000) for _ in range(5)]
        content = File(io.BufferedReader(_GeneratorStream(iter(parts))), name="gen.bin")
        name = storage.save("streams/gen.bin", content)
        assert read_back(storage, name) == b"".join(parts)
        assert storage.size(name) == sum(map(len, parts))
        record(self, "save input kinds", CHECKED, "generator stream")

    def test_save_non_seekable_pipe(self, storage: Any) -> None:
        """A pipe (no seek, no size) is stored whole."""
        data = os.urandom(200_000)
        read_end, write_end = os.pipe()

        def feed() -> None:
            with open(write_end, "wb") as writer:
                writer.write(data)

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            with open(read_end, "rb") as reader:
                assert not reader.seekable()
                name = storage.save("streams/pipe.bin", File(reader, name="pipe.bin"))
        finally:
            feeder.join()
        assert read_back(storage, name) == data
        assert storage.size(name) == len(data)
        record(self, "save input kinds", CHECKED, "pipe")

    # -- 4. the opened file ---------------------------------------------------------------

    def test_opened_file_name_size_and_mode(self, storage: Any) -> None:
        """An opened file tells its name, size and mode without reading the content."""
        name = storage.save("dir/attrs.bin", ContentFile(b"12345678"))
        with storage.open(name, "rb") as handle:
            assert handle.mode == "rb"
            assert handle.size == 8
            local = os.path.isabs(str(handle.name))
            if local:
                # FileSystemStorage's files carry their path, as open() gives them.
                assert str(handle.name).replace(os.sep, "/").endswith("/" + name), handle.name
            else:
                assert handle.name == name
            assert handle.read() == b"12345678"
        with storage.open("dir/written.txt", "w") as handle:
            assert handle.mode == "w"
            handle.write("text")
        record(self, "opened file name/size/mode", CHECKED, "path" if local else "storage name")

    # -- 5. a file and a directory of one name --------------------------------------------------

    def _coexist(self, storage: Any) -> bool:
        if self.file_and_directory_coexist is not None:
            return self.file_and_directory_coexist
        from stowage.drivers.base import Capability
        from stowage.storage import Storage

        if not isinstance(storage, Storage):
            raise AssertionError(f"declare file_and_directory_coexist for {type(storage).__name__}")
        return Capability.REAL_DIRECTORIES not in storage.driver.capabilities

    def _refused_for_a_directory(self, refused: BaseException) -> None:
        # Never "not found", never "taken" (the save would try other names in vain).
        assert "directory" in str(refused).lower(), refused
        assert not isinstance(refused, FileNotFoundError), refused
        assert type(refused).__name__ != "AlreadyExists", refused

    def test_file_where_a_directory_is(self, storage: Any, overwrite_storage: Any) -> None:
        """Saving "a" while "a/" holds files: both kept (object stores), or an alternative
        name, and in overwrite mode a clear refusal (filesystems)."""
        behaviour = "file where a directory is"
        storage.save("a/inner.txt", ContentFile(b"inner"))
        name = storage.save("a", ContentFile(b"file"))
        if self._coexist(storage):
            assert name == "a"
            dirs, files = storage.listdir("")
            assert ("a" in dirs, "a" in files) == (True, True), (dirs, files)
            detail = "both kept"
        else:
            assert re.fullmatch(r"a_[A-Za-z0-9]{7}", name), name
            detail = "alternative name"
        assert read_back(storage, name) == b"file"
        assert read_back(storage, "a/inner.txt") == b"inner"
        if overwrite_storage is None:
            record(self, behaviour, CHECKED, f"{detail}; no overwrite mode")
        elif self._coexist(storage):
            assert overwrite_storage.save("a", ContentFile(b"over")) == "a"
            assert read_back(storage, "a") == b"over"
            assert read_back(storage, "a/inner.txt") == b"inner"
            record(self, behaviour, CHECKED, f"{detail}; overwrite keeps both")
        else:
            with pytest.raises(OSError, match=r"(?i)directory") as refused:
                overwrite_storage.save("a", ContentFile(b"over"))
            self._refused_for_a_directory(refused.value)
            assert read_back(storage, "a/inner.txt") == b"inner"
            record(self, behaviour, REFUSED, f"{detail}; overwrite: {refused.type.__name__}")

    def test_directory_where_a_file_is(self, storage: Any) -> None:
        """Saving "a/b" while a file "a" exists: both kept (object stores) or a clear refusal."""
        behaviour = "directory where a file is"
        storage.save("a", ContentFile(b"file"))
        if self._coexist(storage):
            assert storage.save("a/b", ContentFile(b"below")) == "a/b"
            assert read_back(storage, "a") == b"file"
            assert read_back(storage, "a/b") == b"below"
            dirs, files = storage.listdir("")
            assert ("a" in dirs, "a" in files) == (True, True), (dirs, files)
            record(self, behaviour, CHECKED, "both kept")
        else:
            with pytest.raises(OSError, match=r"(?i)not a directory") as refused:
                storage.save("a/b", ContentFile(b"below"))
            self._refused_for_a_directory(refused.value)
            assert read_back(storage, "a") == b"file"
            assert storage.listdir("")[1] == ["a"]
            record(self, behaviour, REFUSED, refused.type.__name__)

    # -- 6. directory names ------------------------------------------------------------------

    def test_directory_names(self, storage: Any) -> None:
        """exists("d/") is true; size("d") raises; delete("d") never removes d's files."""
        storage.save("d/sub/file.txt", ContentFile(b"kept"))
        assert storage.exists("d/")
        assert storage.exists("d/sub/")
        assert not storage.exists("e/")
        assert storage.listdir("d/") == (["sub"], [])
        with pytest.raises((FileNotFoundError, IsADirectoryError)):
            storage.size("d")
        try:
            storage.delete("d")
        except OSError as refused:
            detail = f"delete refused: {type(refused).__name__}"
        else:
            detail = "delete leaves it"
        assert read_back(storage, "d/sub/file.txt") == b"kept"
        assert storage.exists("d")
        record(self, "directory names", CHECKED, detail)

    # -- 7. case and Unicode normalisation -------------------------------------------------------

    def _pair(self, storage: Any, first: str, second: str, same: bool) -> str:
        assert storage.save(first, ContentFile(b"first")) == first
        saved = storage.save(second, ContentFile(b"second"))
        if same:
            # One name to the backend: the second save must not overwrite the first.
            assert saved != second, saved
            assert storage.exists(second)
            assert read_back(storage, second) == b"first"
            return "one name"
        assert saved == second, saved
        assert read_back(storage, first) == b"first"
        assert read_back(storage, second) == b"second"
        assert sorted(storage.listdir("")[1]) == sorted([first, second])
        return "distinct names"

    def test_case_only_name_pairs(self, storage: Any) -> None:
        """ "A.txt" and "a.txt": distinct names, or one name, as the backend declares."""
        detail = self._pair(storage, "A.txt", "a.txt", self.case_insensitive_names)
        record(self, "case-only name pairs", CHECKED, detail)

    def test_unicode_normalization_pairs(self, storage: Any) -> None:
        """NFC "é" and NFD "é": distinct names, or one name, as the backend declares."""
        composed = unicodedata.normalize("NFC", "café.txt")
        decomposed = unicodedata.normalize("NFD", "café.txt")
        assert composed != decomposed
        detail = self._pair(storage, composed, decomposed, self.unicode_normalizes)
        record(self, "NFC/NFD name pairs", CHECKED, detail)

    def test_url_delimiters_in_names(self, storage: Any) -> None:
        """A name holding ``? # ; % & = +`` is stored as named, or refused and nothing is written.

        Names reach many services inside URLs; a backend that lets a delimiter
        through unencoded would store the file under a shorter name.
        """
        kept, refused = [], []
        for name in DELIMITER_NAMES:
            path = f"delims/{name}"
            try:
                saved = storage.save(path, ContentFile(name.encode()))
            except SuspiciousFileOperation:
                refused.append(name)
                continue
            assert saved == path, saved
            assert read_back(storage, saved) == name.encode()
            kept.append(name)
        listed = storage.listdir("delims")[1] if kept else []
        assert sorted(listed) == sorted(kept), listed
        if refused:
            record(self, "URL delimiters in names", REFUSED, "refused: " + " ".join(refused))
        else:
            record(self, "URL delimiters in names", CHECKED)

    # -- 9. nothing visible before close() ------------------------------------------------------

    def test_written_name_appears_only_on_close(self, storage: Any) -> None:
        """A file opened for writing is not listed nor exists until it is closed."""
        handle = storage.open("pending/new.bin", "wb")
        try:
            handle.write(b"pending")
            handle.flush()
            assert not storage.exists("pending/new.bin")
            assert "new.bin" not in storage.listdir("pending")[1]
        finally:
            handle.close()
        assert storage.exists("pending/new.bin")
        assert storage.listdir("pending")[1] == ["new.bin"]
        assert read_back(storage, "pending/new.bin") == b"pending"
        record(self, "name hidden until close()", CHECKED)

    # -- 10. exists() on a failing service ----------------------------------------------------

    def test_exists_raises_when_the_service_fails(self, broken_storage: Any) -> None:
        """exists() raises on a service failure: Django would pick a taken name on False."""
        failed = _failure(lambda: broken_storage.exists("anything.txt"))
        assert not isinstance(failed, FileNotFoundError), failed
        failed = _failure(lambda: broken_storage.save("anything.txt", ContentFile(b"x")))
        assert not isinstance(failed, FileNotFoundError), failed
        double = isinstance(getattr(broken_storage, "_driver", None), _UnreachableDriver)
        detail = "unreachable driver" if double else "unreachable service"
        record(self, "exists() raises on service failure", CHECKED, detail)

    # -- 11. overwrite updates size and time ----------------------------------------------------

    def test_overwrite_updates_size_and_modified_time(
        self, storage: Any, overwrite_storage: Any
    ) -> None:
        """Replacing a file changes its size and moves its modified time forward."""
        storage.save("grow.txt", ContentFile(b"short"))
        first_size = storage.size("grow.txt")
        first_time = storage.get_modified_time("grow.txt")
        time.sleep(_TICK)
        with storage.open("grow.txt", "wb") as handle:
            handle.write(b"a longer content")
        assert (first_size, storage.size("grow.txt")) == (5, 16)
        second_time = storage.get_modified_time("grow.txt")
        assert second_time > first_time, (first_time, second_time)
        if overwrite_storage is not None:
            time.sleep(_TICK)
            assert overwrite_storage.save("grow.txt", ContentFile(b"xy")) == "grow.txt"
            assert storage.size("grow.txt") == 2
            assert storage.get_modified_time("grow.txt") > second_time
        detail = "open('wb')" if overwrite_storage is None else "open('wb') and overwrite mode"
        record(self, "overwrite updates size and time", CHECKED, detail)

    # -- 12. seeking --------------------------------------------------------------------------

    def test_seek_past_the_end_and_relative(self, storage: Any) -> None:
        """Seeking past the end reads nothing; SEEK_CUR moves from the current position."""
        data = bytes(range(256)) * 64
        name = storage.save("seek.bin", ContentFile(data))
        with storage.open(name, "rb") as handle:
            assert handle.seek(len(data) + 100) == len(data) + 100
            assert handle.read() == b""
            assert handle.read(10) == b""
            assert handle.seek(10) == 10
            assert handle.seek(5, os.SEEK_CUR) == 15
            assert handle.read(3) == data[15:18]
            assert handle.seek(-8, os.SEEK_CUR) == 10
            assert handle.read(4) == data[10:14]
            assert handle.seek(0, os.SEEK_CUR) == 14
            assert handle.tell() == 14
            assert handle.seek(-2, os.SEEK_END) == len(data) - 2
            assert handle.read() == data[-2:]
        record(self, "seek past the end, SEEK_CUR", CHECKED)

    # -- 13. max_length and a collision ----------------------------------------------------------

    def test_max_length_with_a_collision(self, storage: Any) -> None:
        """A colliding name is truncated so root, "_" and 7 characters still fit max_length."""
        name = "dir/" + "x" * 20 + ".txt"
        limit = len(name)
        assert storage.save(name, ContentFile(b"1"), max_length=limit) == name
        second = storage.save(name, ContentFile(b"2"), max_length=limit)
        assert len(second) <= limit, second
        assert re.fullmatch(r"dir/x{12}_[A-Za-z0-9]{7}\.txt", second), second
        assert read_back(storage, name) == b"1"
        assert read_back(storage, second) == b"2"
        record(self, "max_length with a collision", CHECKED)
