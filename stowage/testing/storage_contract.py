"""Check any Django storage against what Django's tests pin, plus stowage's additions.

The numbers in test docstrings refer to the checklist the kit implements
(docs: "Conformance"): 1-23 are what Django's own suites pin for
``FileSystemStorage``; 24-28 are stowage's additions. Sections 10-18 (open,
lookups, listings, times, URLs, paths) live in
:mod:`stowage.testing.access_contract`, which :class:`StorageContract` mixes in.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import io
import os
import pickle
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.images import get_image_dimensions

from stowage.drivers.base import MiB
from stowage.testing.access_contract import FileAccessContract
from stowage.testing.contract_helpers import declared, read_back
from stowage.testing.report import CHECKED, REFUSED, record
from stowage.testing.storage_edges import StorageEdgesContract
from stowage.testing.url_contract import SignedUrlContract

__all__ = ["StorageContract", "make_png"]

_ALT = re.compile(r"^(?P<root>.*)_[A-Za-z0-9]{7}(?P<ext>(\.[^./]+)*)$")


def make_png(width: int, height: int) -> bytes:
    """Return a valid grey PNG image of the given size, built without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class _BrokenContent(io.RawIOBase):
    """Content that fails after giving ``good`` bytes."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise OSError("the upload broke mid-stream")
        count = min(len(buffer), self.left)
        buffer[:count] = b"x" * count
        self.left -= count
        return count


class StorageContract(FileAccessContract, StorageEdgesContract, SignedUrlContract):
    """The behaviours every Django storage must have; subclass and supply ``storage``.

    The ``storage`` fixture must return a storage with nothing in it for each
    test. The class attributes declare what the backend cannot do; where one
    is off, the matching test checks the backend refuses clearly.
    """

    #: Concurrent saves of one name all survive under distinct names.
    atomic_create: ClassVar[bool | None] = None
    #: Without atomic create: how many of ``threads`` same-name saves the backend
    #: promises survive under distinct names (each file is always whole). Required then.
    race_survivors_at_least: ClassVar[int | None] = None
    #: Names with NUL or other control characters raise SuspiciousFileOperation.
    rejects_control_characters: ClassVar[bool] = True
    #: Strings (credentials) that must never appear in repr or deconstruct().
    secret_values: ClassVar[tuple[str, ...]] = ()
    #: Threads in the concurrency tests.
    threads: ClassVar[int] = 8
    #: Bytes of the large-content test.
    large_size: ClassVar[int] = 9 * MiB
    #: Tests this backend is known to fail, with the reason: each runs as a strict
    #: xfail, so the deviation stays documented and a fix shows up as a failure.
    known_deviations: ClassVar[dict[str, str]] = {}

    @pytest.fixture(autouse=True)
    def _mark_known_deviation(self, request: pytest.FixtureRequest) -> None:
        name = getattr(request.node, "originalname", request.node.name)
        reason = self.known_deviations.get(name)
        if reason is not None:
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    @pytest.fixture
    def storage(self) -> Any:
        """Return an empty storage for each test; subclasses override this."""
        raise NotImplementedError("supply a 'storage' fixture")

    @pytest.fixture
    def overwrite_storage(self, storage: Any) -> Any:
        """Return a storage on the same files that overwrites, or None if it cannot."""
        options = getattr(storage, "options", None)
        if options is None or not dataclasses.is_dataclass(options):
            return None
        twin = copy.copy(storage)
        twin.options = dataclasses.replace(options, file_overwrite=True)  # type: ignore[type-var]
        return twin

    # -- 1-3: save ---------------------------------------------------------------

    def test_save_returns_the_stored_name(self, storage: Any) -> None:
        """1. save() returns the name it stored, and the bytes read back."""
        name = storage.save("hello.txt", ContentFile(b"hello world"))
        assert name == "hello.txt"
        assert read_back(storage, name) == b"hello world"

    def test_save_without_name_uses_the_content_name(self, storage: Any) -> None:
        """1. save(None, f) takes the name from the content."""
        name = storage.save(None, ContentFile(b"named", name="from-content.txt"))
        assert name == "from-content.txt"
        assert read_back(storage, name) == b"named"

    def test_save_text_content(self, storage: Any) -> None:
        """2. A ContentFile of str is stored as UTF-8."""
        name = storage.save("text.txt", ContentFile("ünïcode text"))
        assert read_back(storage, name) == "ünïcode text".encode()

    def test_save_plain_file_objects(self, storage: Any, tmp_path: Path) -> None:
        """2. Plain binary files, BytesIO and StringIO are accepted."""
        source = tmp_path / "source.bin"
        source.write_bytes(b"from disk")
        with open(source, "rb") as handle:
            assert read_back(storage, storage.save("disk.bin", handle)) == b"from disk"
        assert read_back(storage, storage.save("bytes.bin", io.BytesIO(b"bytes io"))) == b"bytes io"
        assert read_back(storage, storage.save("str.txt", io.StringIO("string io"))) == b"string io"

    def test_save_pathlib_name(self, storage: Any) -> None:
        """2. A pathlib name works like its string."""
        name = storage.save(PurePosixPath("dir/path.txt"), ContentFile(b"p"))
        assert name == "dir/path.txt"
        assert storage.exists("dir/path.txt")

    def test_save_leaves_the_content_open(self, storage: Any) -> None:
        """3. save() does not close the content it was given."""
        content = ContentFile(b"still open")
        storage.save("open.txt", content)
        assert not content.closed
        content.seek(0)
        assert content.read() == b"still open"

    def test_errors_reading_the_content_propagate(self, storage: Any) -> None:
        """3. An exception raised by the content reaches the caller."""
        content = File(_BrokenContent(10), name="broken.bin")  # type: ignore[arg-type]
        with pytest.raises(OSError, match="mid-stream"):
            storage.save("broken.bin", content)

    # -- 4: unsafe names ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "..\\escape.txt"]
    )
    def test_save_refuses_unsafe_names(self, storage: Any, name: str) -> None:
        """4. Traversal and absolute names raise SuspiciousFileOperation."""
        with pytest.raises(SuspiciousFileOperation):
            storage.save(name, ContentFile(b"x"))

    @pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt"])
    def test_every_operation_refuses_traversal(self, storage: Any, name: str) -> None:
        """4. exists, open, size, delete and listdir refuse traversal too."""
        calls: list[Callable[[], object]] = [
            lambda: storage.exists(name),
            lambda: storage.open(name).read(),
            lambda: storage.size(name),
            lambda: storage.delete(name),
            lambda: storage.listdir(name),
        ]
        for call in calls:
            with pytest.raises(SuspiciousFileOperation):
                call()

    # -- 5-8: names on collision, overwrite, concurrency ---------------------------------

    def test_collision_gets_an_alternative_name(self, storage: Any) -> None:
        """5. A taken name becomes root_XXXXXXX.ext and both files survive."""
        first = storage.save("dir/photo.jpg", ContentFile(b"first"))
        second = storage.save("dir/photo.jpg", ContentFile(b"second"))
        assert first == "dir/photo.jpg"
        match = _ALT.match(second)
        assert match is not None, second
        assert match["root"] == "dir/photo"
        assert match["ext"] == ".jpg"
        assert read_back(storage, first) == b"first"
        assert read_back(storage, second) == b"second"

    def test_collision_keeps_multi_part_extensions(self, storage: Any) -> None:
        """5. x.tar.gz becomes x_XXXXXXX.tar.gz."""
        storage.save("x.tar.gz", ContentFile(b"1"))
        second = storage.save("x.tar.gz", ContentFile(b"2"))
        assert re.fullmatch(r"x_[A-Za-z0-9]{7}\.tar\.gz", second), second

    def test_collision_of_a_dotfile(self, storage: Any) -> None:
        """5. .env becomes .env_XXXXXXX."""
        storage.save(".env", ContentFile(b"1"))
        second = storage.save(".env", ContentFile(b"2"))
        assert re.fullmatch(r"\.env_[A-Za-z0-9]{7}", second), second

    def test_directories_with_dots_never_change(self, storage: Any) -> None:
        """5. Only the file name changes, never a directory with a dot."""
        storage.save("v1.2/data.csv", ContentFile(b"1"))
        second = storage.save("v1.2/data.csv", ContentFile(b"2"))
        assert second.startswith("v1.2/data_")
        assert second.endswith(".csv")

    def test_max_length_truncates_the_root(self, storage: Any) -> None:
        """6. A name over max_length is truncated to fit, extension kept."""
        name = storage.save("d/" + "a" * 40 + ".txt", ContentFile(b"x"), max_length=30)
        assert len(name) <= 30
        assert name.startswith("d/a")
        assert name.endswith(".txt")
        assert read_back(storage, name) == b"x"

    def test_max_length_with_no_room_raises(self, storage: Any) -> None:
        """6. When nothing of the root is left, saving raises."""
        with pytest.raises(SuspiciousFileOperation, match="can not find an available filename"):
            storage.save("directory/name.txt", ContentFile(b"x"), max_length=12)

    def test_overwrite_mode_replaces_completely(self, storage: Any, overwrite_storage: Any) -> None:
        """7. Overwrite mode keeps the name and the old content is gone entirely."""
        storage.save("same.txt", ContentFile(b"a long first version"))
        if overwrite_storage is None:
            # No overwrite mode: saving again must keep both files.
            other = storage.save("same.txt", ContentFile(b"short"))
            assert other != "same.txt"
            assert read_back(storage, "same.txt") == b"a long first version"
            assert read_back(storage, other) == b"short"
            record(self, "overwrite mode", REFUSED, "no overwrite mode: a new name")
        else:
            name = overwrite_storage.save("same.txt", ContentFile(b"short"))
            assert name == "same.txt"
            assert read_back(storage, "same.txt") == b"short"
            assert storage.listdir("")[1] == ["same.txt"]
            record(self, "overwrite mode", CHECKED)

    def test_concurrent_saves_of_one_name_keep_every_file(self, storage: Any) -> None:
        """8. Same-name saves: with atomic create all survive; else the stated number, whole."""
        atomic = declared(self, storage, "atomic_create", "ATOMIC_CREATE")
        bound = self.race_survivors_at_least
        if not atomic:
            assert bound is not None, (
                f"{type(self).__name__} has no atomic create: declare race_survivors_at_least, "
                f"the fewest of {self.threads} same-name saves the backend promises to keep"
            )
        barrier = threading.Barrier(self.threads)

        def save(index: int) -> str:
            barrier.wait()
            name: str = storage.save("race.txt", ContentFile(f"content {index}".encode()))
            return name

        with ThreadPoolExecutor(self.threads) as pool:
            names = list(pool.map(save, range(self.threads)))
        kept = sorted(set(names))
        stored = [read_back(storage, name) for name in kept]
        expected = {f"content {i}".encode() for i in range(self.threads)}
        # Never torn or mixed: each name holds one whole upload, and no upload twice.
        assert set(stored) <= expected, stored
        assert len(set(stored)) == len(stored), stored
        # Nothing partial or temporary is visible beside them.
        assert sorted(storage.listdir("")[1]) == kept
        if atomic:
            assert len(kept) == self.threads, names
            record(self, "same-name race", CHECKED, f"all {self.threads} kept, atomic create")
        else:
            assert bound is not None
            assert len(kept) >= bound, f"{len(kept)} of {self.threads} saves survived"
            record(self, "same-name race", CHECKED, f"at least {bound} of {self.threads} kept")

    # -- 9: generate_filename -----------------------------------------------------------

    def test_generate_filename_cleans_the_base_name(self, storage: Any) -> None:
        """9. Spaces become _, odd characters go, unicode letters and case stay."""
        assert storage.generate_filename("dir/My Photo (1)!.JPG") == "dir/My_Photo_1.JPG"
        assert storage.generate_filename("ünïcödé näme.txt") == "ünïcödé_näme.txt"
        assert storage.generate_filename("./a/./b.txt") == "a/b.txt"
        assert storage.generate_filename("a\\b\\c.txt") == "a/b/c.txt"

    @pytest.mark.parametrize("name", ["", ".", "..", "dir/..", "../a.txt"])
    def test_generate_filename_refuses_empty_and_traversal(self, storage: Any, name: str) -> None:
        """9. Empty, '.' and '..' names raise."""
        with pytest.raises(SuspiciousFileOperation):
            storage.generate_filename(name)

    # -- 19-22: the storage object ------------------------------------------------------------

    def test_deconstruct_rebuilds_the_class(self, storage: Any) -> None:
        """19. deconstruct() names an importable class that rebuilds with its kwargs."""
        path, args, kwargs = storage.deconstruct()
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert cls is type(storage)
        rebuilt = cls(*args, **kwargs)
        assert rebuilt.deconstruct() == (path, args, kwargs)

    def test_pickle_round_trip_keeps_working(self, storage: Any) -> None:
        """20. A pickled storage still reads what was stored."""
        name = storage.save("pickled.txt", ContentFile(b"pickle"))
        clone = pickle.loads(pickle.dumps(storage))
        assert read_back(clone, name) == b"pickle"

    def test_shared_instance_is_thread_safe(self, storage: Any) -> None:
        """22. One instance used by many threads at once raises and corrupts nothing."""

        def work(index: int) -> None:
            for step in range(5):
                data = f"thread {index} step {step}".encode() * 50
                name = storage.save(f"threads/{index}/{step}.txt", ContentFile(data))
                assert storage.exists(name)
                assert read_back(storage, name) == data
                assert storage.size(name) == len(data)
                storage.listdir(f"threads/{index}")
                if step % 2:
                    storage.delete(name)

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(work, range(self.threads)))
        for index in range(self.threads):
            assert sorted(storage.listdir(f"threads/{index}")[1]) == ["0.txt", "2.txt", "4.txt"]

    # -- 23: images ------------------------------------------------------------------------

    def test_image_dimensions_read_through_open(self, storage: Any) -> None:
        """23. Image width and height come from a read of the header."""
        png = make_png(64, 48)
        name = storage.save("image.png", ContentFile(png))
        with storage.open(name, "rb") as handle:
            assert get_image_dimensions(handle) == (64, 48)

    # -- 24-28: stowage's additions -------------------------------------------------------

    @pytest.mark.parametrize("name", ["nul\x00.txt", "line\nbreak.txt", "unit\x1fsep.txt"])
    def test_control_characters(self, storage: Any, name: str) -> None:
        """24. Control characters in a name are refused (or, where declared, stored as given)."""
        behaviour = "control characters in names"
        if self.rejects_control_characters:
            with pytest.raises(SuspiciousFileOperation):
                storage.save(name, ContentFile(b"x"))
            with pytest.raises(SuspiciousFileOperation):
                storage.exists(name)
            record(self, behaviour, REFUSED, "SuspiciousFileOperation")
        else:
            error: ValueError | None = None
            saved = None
            try:
                saved = storage.save(name, ContentFile(b"x"))
            except ValueError as exc:
                error = exc
            if error is not None:
                # The filesystem's own refusal: no POSIX name may hold NUL.
                assert "\x00" in name, repr(error)
                assert "null" in str(error), repr(error)  # "null byte", "null character"
                record(self, behaviour, REFUSED, "ValueError from the OS for NUL")
            else:
                # Declared as accepting them: the name must then work exactly as given.
                assert saved == name
                assert storage.exists(name)
                assert read_back(storage, name) == b"x"
                record(self, behaviour, CHECKED, "stored as given")

    def test_secrets_absent_from_repr_and_deconstruct(self, storage: Any) -> None:
        """25. No configured secret shows in repr, str or deconstruct()."""
        shown = " ".join([repr(storage), str(storage), repr(storage.deconstruct())])
        for secret in self.secret_values:
            assert secret not in shown

    def test_interrupted_write_leaves_nothing(self, storage: Any) -> None:
        """26. Leaving a write through an exception stores nothing."""

        def write_then_fail() -> None:
            with storage.open("interrupted.bin", "wb") as handle:
                handle.write(b"partial")
                raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            write_then_fail()
        assert not storage.exists("interrupted.bin")

    def test_failed_save_leaves_nothing(self, storage: Any) -> None:
        """26. A save whose content breaks midway leaves no file behind."""
        content = File(_BrokenContent(3 * MiB), name="half.bin")  # type: ignore[arg-type]
        with pytest.raises(OSError, match="mid-stream"):
            storage.save("half.bin", content)
        assert not storage.exists("half.bin")
        assert storage.listdir("")[1] == []

    def test_large_content_round_trips(self, storage: Any) -> None:
        """26. Several MiB stream in and out intact."""
        data = os.urandom(self.large_size)
        name = storage.save("large.bin", ContentFile(data))
        digest = hashlib.sha256()
        with storage.open(name, "rb") as handle:
            for chunk in handle.chunks():
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert storage.size(name) == self.large_size

    def test_several_writes_keep_all_data_in_order(self, storage: Any) -> None:
        """27. Many write() calls on one file keep every byte, in order."""
        with storage.open("many.bin", "wb") as handle:
            for index in range(100):
                handle.write(f"{index:03d},".encode())
        assert read_back(storage, "many.bin") == b"".join(f"{i:03d},".encode() for i in range(100))

    def test_unicode_and_space_names(self, storage: Any) -> None:
        """Unicode letters and spaces survive a round trip and a listing."""
        name = storage.save("résumé docs/naïve file 文件.txt", ContentFile(b"u"))
        assert name == "résumé docs/naïve file 文件.txt"
        assert read_back(storage, name) == b"u"
        assert storage.listdir("résumé docs") == ([], ["naïve file 文件.txt"])

    def _all_files(self, storage: Any, path: str = "") -> Iterator[str]:
        dirs, files = storage.listdir(path)
        for name in files:
            yield f"{path}/{name}" if path else name
        for name in dirs:
            yield from self._all_files(storage, f"{path}/{name}" if path else name)

    def test_listdir_walk_finds_every_saved_name(self, storage: Any) -> None:
        """28. Walking listdir finds exactly the saved names, relative to the storage."""
        saved = {
            storage.save(name, ContentFile(b"w"))
            for name in ("w1.txt", "x/w2.txt", "x/y/w3.txt", "x/y/z/w4.txt")
        }
        assert set(self._all_files(storage)) == saved
