"""The adapter's own behaviour, observed through instrumented drivers."""

from __future__ import annotations

import dataclasses
import io
import pickle
import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from stowage import LocalStorage, MemoryStorage, S3Storage, Storage
from stowage.config import option
from stowage.drivers.base import DriverOptions
from stowage.drivers.memory import MemoryDriver
from stowage.exceptions import (
    AlreadyExists,
    ConfigurationError,
    IncompleteRead,
    MissingDependency,
    NotFound,
    UnsupportedOperation,
)
from tests.unit.recording import CheckThenWriteDriver, RecordingDriver

RECORDING = "tests.unit.recording:RecordingDriver"
CHECK_THEN_WRITE = "tests.unit.recording:CheckThenWriteDriver"


def recording(**options: Any) -> tuple[Storage, RecordingDriver]:
    storage = Storage(driver=RECORDING, **options)
    driver = storage.driver
    assert isinstance(driver, RecordingDriver)
    return storage, driver


def test_save_is_one_atomic_put_when_the_name_is_free() -> None:
    storage, driver = recording()
    assert storage.save("a.txt", ContentFile(b"x")) == "a.txt"
    assert [c[0] for c in driver.calls] == ["put"]
    assert driver.calls[0][2]["if_absent"] is True


def test_collision_tries_the_next_name_without_exists_calls() -> None:
    storage, driver = recording()
    storage.save("a.txt", ContentFile(b"1"))
    driver.calls.clear()
    second = storage.save("a.txt", ContentFile(b"2"))
    assert second != "a.txt"
    assert driver.names("put") == ["a.txt", second]
    assert driver.names("exists") == []


def test_large_content_skips_taken_names_before_uploading() -> None:
    storage, driver = recording(max_memory_size=1024)
    storage.save("big.bin", ContentFile(b"x" * 4096))
    driver.calls.clear()
    second = storage.save("big.bin", ContentFile(b"y" * 4096))
    assert driver.names("put") == [second]
    assert driver.names("exists")[0] == "big.bin"


def test_driver_without_atomic_create_checks_then_asks_for_its_best() -> None:
    storage = Storage(driver=CHECK_THEN_WRITE)
    driver = storage.driver
    assert isinstance(driver, CheckThenWriteDriver)
    storage.save("a.txt", ContentFile(b"1"))
    second = storage.save("a.txt", ContentFile(b"2"))
    assert second != "a.txt"
    # The name is checked first, and the driver still asked not to overwrite.
    assert "a.txt" in driver.names("exists")
    assert all(c[2].get("if_absent") is True for c in driver.calls if c[0] == "put")


def test_overwrite_puts_without_condition() -> None:
    storage, driver = recording(file_overwrite=True)
    storage.save("a.txt", ContentFile(b"1"))
    assert storage.save("a.txt", ContentFile(b"2")) == "a.txt"
    assert [c[2]["if_absent"] for c in driver.calls if c[0] == "put"] == [False, False]
    assert storage.open("a.txt").read() == b"2"


def test_unseekable_content_is_spooled_so_a_collision_can_retry() -> None:
    class OneShot(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: Any) -> int:
            count = min(len(buffer), len(self.data))
            buffer[:count] = self.data[:count]
            self.data = self.data[count:]
            return count

    storage, _ = recording()
    storage.save("one.txt", ContentFile(b"first"))
    name = storage.save("one.txt", File(OneShot(b"second"), name="one.txt"))  # type: ignore[arg-type]
    assert name != "one.txt"
    assert storage.open(name).read() == b"second"


def test_gives_up_after_many_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    storage, driver = recording()

    def always_taken(*args: Any, **kwargs: Any) -> Any:
        raise AlreadyExists("taken")

    monkeypatch.setattr(driver, "put", always_taken)
    with pytest.raises(SuspiciousFileOperation, match="after 100 attempts"):
        storage.save("a.txt", ContentFile(b"x"))


def test_location_prefixes_every_key_and_listdir_is_relative() -> None:
    storage, driver = recording(location="/site/media/")
    storage.save("d/a.txt", ContentFile(b"x"))
    assert driver.names("put") == ["site/media/d/a.txt"]
    assert storage.listdir("") == (["d"], [])
    assert storage.listdir("d") == ([], ["a.txt"])
    assert storage.exists("d/a.txt")


def test_a_name_never_reaches_outside_location() -> None:
    storage, driver = recording(location="media")
    for name in ("../secret", "d/../../secret", "/secret", "..\\secret"):
        with pytest.raises(SuspiciousFileOperation):
            storage.save(name, ContentFile(b"x"))
    assert driver.calls == []


def test_overlong_keys_are_refused_before_the_driver() -> None:
    storage, driver = recording()
    with pytest.raises(SuspiciousFileOperation, match="longer than"):
        storage.save("é" * 600, ContentFile(b"x"))
    assert driver.calls == []


@pytest.mark.parametrize(
    ("part", "fits"),
    [
        ("a" * 255, True),
        ("a" * 256, False),
        ("é" * 127, True),  # 254 bytes
        ("é" * 128, False),  # 256 bytes in 128 characters
        ("😀" * 63, True),  # 252 bytes
        ("😀" * 64, False),
    ],
)
def test_a_part_is_judged_by_its_bytes_in_utf8(part: str, fits: bool, tmp_path: Any) -> None:
    storage = LocalStorage(location=tmp_path)  # 255 bytes per part, as file systems
    for name in (part, f"dir/{part}", f"{part}/file.txt"):
        if fits:
            assert storage.key(name) == name
        else:
            with pytest.raises(SuspiciousFileOperation, match="longer than"):
                storage.key(name)


def test_content_type_comes_from_the_name_first() -> None:
    storage, driver = recording()
    upload = SimpleUploadedFile("x.png", b"\x89PNG", content_type="text/html")
    storage.save("x.png", upload)
    storage.save("data", SimpleUploadedFile("data", b"{}", content_type="application/json"))
    storage.save("blob", ContentFile(b"?"))
    types = [c[2]["content_type"] for c in driver.calls if c[0] == "put"]
    assert types == ["image/png", "application/json", "application/octet-stream"]


def test_open_does_no_work_until_the_first_read() -> None:
    storage, driver = recording()
    storage.save("a.bin", ContentFile(b"x" * 10))
    driver.calls.clear()
    handle = storage.open("a.bin")
    assert driver.calls == []
    assert handle.read(1) == b"x"
    assert [c[0] for c in driver.calls] == ["get"]


def test_reading_the_start_of_a_large_object_fetches_about_that_much() -> None:
    storage, driver = recording()
    storage.save("huge.bin", ContentFile(b"z" * (8 * 1024 * 1024)))
    driver.bytes_served = 0
    with storage.open("huge.bin") as handle:
        assert len(handle.read(64 * 1024)) == 64 * 1024
    assert driver.bytes_served <= 64 * 1024


def test_sequential_reads_stream_in_one_more_request() -> None:
    storage, driver = recording()
    data = bytes(range(256)) * 8192
    storage.save("seq.bin", ContentFile(data))
    driver.calls.clear()
    with storage.open("seq.bin") as handle:
        assert handle.read() == data
    gets = [c[2] for c in driver.calls if c[0] == "get"]
    assert gets == [{"start": 0, "end": 64 * 1024}, {"start": 64 * 1024, "end": None}]


def test_size_of_an_open_file_needs_no_download() -> None:
    storage, driver = recording()
    storage.save("s.bin", ContentFile(b"x" * 1000))
    driver.bytes_served = 0
    assert storage.open("s.bin").size == 1000
    assert driver.bytes_served == 0


def test_a_body_cut_short_is_resumed_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    storage, _driver = recording()
    storage.save("cut.bin", ContentFile(b"x" * 200_000))
    real_get = RecordingDriver.get
    cuts = {"left": 1}

    def cutting_get(self: RecordingDriver, key: str, **kwargs: Any) -> Any:
        download = real_get(self, key, **kwargs)
        if cuts["left"] == 0:
            return download
        cuts["left"] -= 1
        body = b"".join(download)
        return type(download)(download.info, [body[: len(body) // 2]])

    monkeypatch.setattr(RecordingDriver, "get", cutting_get)
    with storage.open("cut.bin") as handle:
        assert handle.read() == b"x" * 200_000
    cuts["left"] = 100
    with pytest.raises(IncompleteRead), storage.open("cut.bin") as handle:
        handle.read()


def test_write_mode_spools_to_disk_past_the_threshold() -> None:
    storage, driver = recording(max_memory_size=1024)
    with storage.open("w.bin", "wb") as handle:
        handle.write(b"a" * 5000)
        assert handle.file._rolled  # spilled to a temporary file
        assert handle.size == 5000
    assert storage.open("w.bin").read() == b"a" * 5000
    assert [c[2].get("if_absent", False) for c in driver.calls if c[0] == "put"] == [False]


def test_unsupported_modes_are_refused() -> None:
    storage = MemoryStorage()
    for mode in ("ab", "r+b", "x"):
        with pytest.raises(ValueError, match="Unsupported mode"):
            storage.open("a", mode)


def test_reopening_a_file_in_another_mode() -> None:
    storage = MemoryStorage()
    handle = storage.open("f.txt", "wb")
    handle.write(b"first")
    handle.close()
    handle.open("rb")
    assert handle.read() == b"first"
    handle.open()
    assert handle.read() == b"first"
    handle.close()


def test_unknown_option_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        MemoryStorage(bucket="x")
    message = str(caught.value)
    assert "'bucket'" in message
    assert "file_overwrite" in message
    assert "namespace" in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"file_overwrite": "yes"}, "'file_overwrite' must be bool"),
        ({"querystring_expire": True}, "'querystring_expire' must be int"),
        ({"querystring_expire": 0}, "'querystring_expire' must be positive"),
        ({"base_url": "/media"}, "'base_url' must end with a slash"),
        ({"url_protocol": "ftp:"}, "'url_protocol'"),
        ({"location": 5}, "'location' must be str"),
    ],
)
def test_invalid_option_values(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        MemoryStorage(**options)


def test_unknown_driver_and_missing_extra() -> None:
    with pytest.raises(ConfigurationError, match="Unknown storage driver 'nope'"):
        Storage(driver="nope")
    with pytest.raises(ConfigurationError, match="not a stowage Driver"):
        Storage(driver="tests.unit.recording:Any")
    with pytest.raises(ConfigurationError, match="Cannot import"):
        Storage(driver="tests.no_such_module:Driver")


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from stowage import registry

    monkeypatch.setitem(
        registry.BUILTIN_DRIVERS, "fake", registry.DriverSpec("tests.unit.needs_sdk:X", "fake")
    )
    with pytest.raises(MissingDependency, match=r"pip install 'django-stowage\[fake\]'"):
        Storage(driver="fake")


def test_default_driver_is_local(tmp_path: Any) -> None:
    storage = Storage(location=str(tmp_path))
    storage.save("a.txt", ContentFile(b"x"))
    assert (tmp_path / "a.txt").read_bytes() == b"x"


def test_pickle_drops_the_driver_and_recreates_it() -> None:
    storage = MemoryStorage()
    storage.save("p.txt", ContentFile(b"p"))
    state = storage.__getstate__()
    assert state["_driver"] is None
    assert "_lock" not in state
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.open("p.txt").read() == b"p"
    assert isinstance(clone._lock, type(threading.Lock()))


def test_driver_is_created_once_across_threads() -> None:
    storage = Storage(driver=RECORDING)
    seen: set[int] = set()

    def grab() -> None:
        seen.add(id(storage.driver))

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 1


def test_get_accessed_time_where_unsupported() -> None:
    storage = Storage(driver=CHECK_THEN_WRITE)
    storage.save("a", ContentFile(b"x"))
    assert storage.get_accessed_time("a")  # memory keeps access times
    local = LocalStorage()
    with pytest.raises(UnsupportedOperation):
        Storage(driver="tests.unit.recording:PublicDriver").path("a")
    assert local.path("x").endswith("x")


def test_not_found_is_a_file_not_found_error() -> None:
    storage = MemoryStorage()
    with pytest.raises(NotFound) as caught:
        storage.size("missing")
    assert isinstance(caught.value, FileNotFoundError)


def test_close_releases_the_driver() -> None:
    storage, driver = recording()
    storage.close()
    assert storage._driver is None
    assert storage.driver is not driver


def test_close_drops_the_url_policy_with_its_driver() -> None:
    storage = S3Storage(
        bucket_name="b", endpoint_url="http://127.0.0.1:9", access_key="AK", secret_key="s" * 40
    )
    first = storage.url("a.txt")
    closed = storage.driver
    storage.close()
    assert storage.url("a.txt").split("?")[0] == first.split("?")[0]
    policy = storage._url_policy
    assert policy is not None
    assert policy.driver is storage.driver
    assert policy.driver is not closed


def test_copy_and_move() -> None:
    storage = MemoryStorage()
    storage.save("a.txt", ContentFile(b"content"))
    assert storage.copy("a.txt", "b/c.txt") == "b/c.txt"
    assert storage.open("b/c.txt").read() == b"content"
    with pytest.raises(AlreadyExists):
        storage.copy("a.txt", "b/c.txt")
    storage.save("new.txt", ContentFile(b"new"))
    storage.copy("new.txt", "b/c.txt", overwrite=True)
    assert storage.open("b/c.txt").read() == b"new"
    assert storage.move("a.txt", "moved.txt") == "moved.txt"
    assert not storage.exists("a.txt")
    assert storage.open("moved.txt").read() == b"content"
    with pytest.raises(SuspiciousFileOperation):
        storage.copy("moved.txt", "../escape.txt")
    with pytest.raises(NotFound):
        storage.copy("missing.txt", "x.txt")


def test_pickles_carry_no_secret_and_round_trip_in_process() -> None:
    from stowage import secrecy as storage_module

    storage = Storage(driver="tests.unit.test_storage:SecretOptionDriver", token="s3cr3t-value")
    dumped = pickle.dumps(storage)
    assert b"s3cr3t-value" not in dumped
    again = pickle.loads(dumped)
    assert again.driver_options.token == "s3cr3t-value"
    assert "token" not in again.deconstruct()[2]
    # Unpickled where the secret is unknown (another process): settings supply it.
    storage_module._PICKLED_SECRETS.clear()
    with override_settings(TEST_TOKEN="from-settings"):
        elsewhere = pickle.loads(dumped)
    assert elsewhere.driver_options.token == "from-settings"
    assert pickle.loads(pickle.dumps(Storage(driver="memory"))).exists("x") is False


@dataclasses.dataclass(frozen=True)
class SecretOptions(DriverOptions):
    token: str | None = option(None, doc="A secret.", secret=True)


class SecretOptionDriver(MemoryDriver):
    options_class = SecretOptions
    setting_fallbacks = {"token": "TEST_TOKEN"}


def test_alistdir_keeps_names_as_the_entries_come() -> None:
    """Without a listing of the driver's own, alistdir never holds the whole list of entries."""
    import asyncio

    storage = MemoryStorage()
    for name in ("d/a.txt", "d/b.txt", "d/sub/c.txt"):
        storage.save(name, ContentFile(b"x"))
    driver = storage.driver
    alive: list[int] = []
    listed = driver.list

    def one_at_a_time(prefix: str, *, recursive: bool = False) -> Any:
        for entry in listed(prefix, recursive=recursive):
            alive.append(threading.get_ident())
            yield entry

    async def whole(prefix: str, *, recursive: bool = False) -> Any:
        raise AssertionError("alistdir collected the whole listing")

    driver.list = one_at_a_time  # type: ignore[method-assign]
    driver.alist = whole  # type: ignore[method-assign]
    main = threading.get_ident()
    assert asyncio.run(storage.alistdir("d")) == (["sub"], ["a.txt", "b.txt"])
    assert len(alive) == 3
    assert main not in alive  # on a worker thread
