"""Check a stowage driver directly, below the Django adapter."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
from typing import Any, ClassVar

import pytest

from stowage.drivers.base import Capability, Driver, MiB, ObjectInfo, Prefix
from stowage.exceptions import AlreadyExists, NotFound
from stowage.testing.report import CHECKED, REFUSED, record

__all__ = ["DriverContract"]


def _read(driver: Driver[Any], key: str, **kwargs: Any) -> bytes:
    download = driver.get(key, **kwargs)
    try:
        return b"".join(download)
    finally:
        download.close()


def _put(driver: Driver[Any], key: str, data: bytes, **kwargs: Any) -> ObjectInfo:
    return driver.put(key, io.BytesIO(data), size=len(data), **kwargs)


class _StrictStream:
    """A stream that fails if asked for everything at once, and counts what it gave."""

    def __init__(self, size: int, *, fail_at: int | None = None) -> None:
        self.remaining = size
        self.given = 0
        self.fail_at = fail_at
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0 or size > 64 * MiB:
            raise AssertionError(f"the driver asked for {size!r} bytes at once")
        if self.fail_at is not None and self.given >= self.fail_at:
            raise OSError("the source broke mid-stream")
        count = min(size, self.remaining)
        chunk = os.urandom(count)
        self.remaining -= count
        self.given += count
        self.digest.update(chunk)
        return chunk


class DriverContract:
    """The behaviours every driver must have; subclass and supply ``driver``.

    The ``driver`` fixture must return a driver on an empty namespace (an
    empty bucket, directory or prefix) for each test.
    """

    #: Bytes for the large-object test (big enough to cross multipart thresholds).
    large_size: ClassVar[int] = 12 * MiB
    #: Objects for the pagination test (more than one page of a listing).
    many_keys: ClassVar[int] = 1005

    @pytest.fixture
    def driver(self) -> Driver[Any]:
        """Return a driver on an empty namespace; subclasses override this."""
        raise NotImplementedError("supply a 'driver' fixture")

    def test_put_then_get_round_trips(self, driver: Driver[Any]) -> None:
        info = _put(driver, "dir/a.bin", b"hello world")
        assert info.size == 11
        assert info.key == "dir/a.bin"
        assert _read(driver, "dir/a.bin") == b"hello world"

    def test_put_replaces_whole_content(self, driver: Driver[Any]) -> None:
        _put(driver, "a.txt", b"a much longer first content")
        _put(driver, "a.txt", b"short")
        assert _read(driver, "a.txt") == b"short"

    def test_empty_object(self, driver: Driver[Any]) -> None:
        _put(driver, "empty", b"")
        assert _read(driver, "empty") == b""
        assert _read(driver, "empty", start=0, end=1024) == b""
        assert driver.head("empty").size == 0

    def test_ranged_get(self, driver: Driver[Any]) -> None:
        data = bytes(range(256)) * 40
        _put(driver, "r.bin", data)
        assert _read(driver, "r.bin", start=10, end=20) == data[10:20]
        assert _read(driver, "r.bin", start=9000) == data[9000:]
        assert _read(driver, "r.bin", start=10_000, end=20_000) == data[10_000:]
        download = driver.get("r.bin", start=5, end=6)
        try:
            assert download.info.size == len(data)
        finally:
            download.close()

    def test_get_past_the_end_yields_nothing(self, driver: Driver[Any]) -> None:
        _put(driver, "r.bin", b"abc")
        assert _read(driver, "r.bin", start=3) == b""
        assert _read(driver, "r.bin", start=100, end=200) == b""

    def test_head_describes_the_object(self, driver: Driver[Any]) -> None:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        _put(driver, "h.txt", b"12345", content_type="text/plain")
        info = driver.head("h.txt")
        assert info.size == 5
        assert info.modified is not None
        assert info.modified.tzinfo is not None
        assert before <= info.modified <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)

    def test_missing_key_raises_not_found(self, driver: Driver[Any]) -> None:
        with pytest.raises(NotFound):
            driver.head("missing")
        with pytest.raises(FileNotFoundError):
            _read(driver, "missing")

    def test_delete(self, driver: Driver[Any]) -> None:
        _put(driver, "d.txt", b"x")
        driver.delete("d.txt")
        with pytest.raises(NotFound):
            driver.head("d.txt")
        driver.delete("d.txt")
        driver.delete("never/was/here")

    def test_exists_and_is_dir(self, driver: Driver[Any]) -> None:
        _put(driver, "x/y/z.txt", b"z")
        assert driver.exists("x/y/z.txt")
        assert driver.exists("x")
        assert driver.is_dir("x/y")
        assert not driver.is_dir("x/y/z.txt")
        assert not driver.exists("x/nope")

    def test_exists_among_siblings(self, driver: Driver[Any]) -> None:
        """A name is not found through siblings that share its first characters."""
        for key in ("s/name-2.txt", "s/name.bak", "s/name 2", "s/namez/inner.txt", "s/a+b c"):
            _put(driver, key, b"x")
        assert not driver.exists("s/name")
        assert not asyncio.run(driver.aexists("s/name"))
        assert driver.exists("s/a+b c")
        assert asyncio.run(driver.aexists("s/a+b c"))
        _put(driver, "s/name", b"x")
        assert driver.exists("s/name")
        for key in ("s/dir-2.txt", "s/dir.bak", "s/dir/inner.txt"):
            _put(driver, key, b"x")
        assert driver.exists("s/dir")
        assert asyncio.run(driver.aexists("s/dir"))

    def test_create_if_absent(self, driver: Driver[Any]) -> None:
        """Refuse a taken key with ``if_absent``: atomically, or by a last look before commit."""
        _put(driver, "c.txt", b"first", if_absent=True)
        with pytest.raises(AlreadyExists):
            _put(driver, "c.txt", b"second", if_absent=True)
        with pytest.raises(FileExistsError):
            _put(driver, "c.txt", b"third", if_absent=True)
        assert _read(driver, "c.txt") == b"first"
        assert [e.key for e in driver.list("")] == ["c.txt"]
        atomic = Capability.ATOMIC_CREATE in driver.capabilities
        record(self, "create if absent", CHECKED, "atomic" if atomic else "checked just before")

    def test_list_one_level(self, driver: Driver[Any]) -> None:
        for key in ("top.txt", "d/one.txt", "d/two.txt", "d/sub/three.txt", "e/four.txt"):
            _put(driver, key, key.encode())
        root = list(driver.list(""))
        assert sorted(e.key for e in root if isinstance(e, Prefix)) == ["d", "e"]
        assert [e.key for e in root if isinstance(e, ObjectInfo)] == ["top.txt"]
        inside = list(driver.list("d"))
        assert sorted(e.key for e in inside if isinstance(e, ObjectInfo)) == [
            "d/one.txt",
            "d/two.txt",
        ]
        assert [e.key for e in inside if isinstance(e, Prefix)] == ["d/sub"]
        sizes = {e.key: e.size for e in inside if isinstance(e, ObjectInfo)}
        assert sizes == {"d/one.txt": 9, "d/two.txt": 9}

    def test_list_names_are_the_listings_keys(self, driver: Driver[Any]) -> None:
        for key in ("top.txt", "d/one.txt", "d/two.txt", "d/sub/three.txt", "e/four.txt"):
            _put(driver, key, key.encode())
        assert sorted(driver.list_names("")) == [("d", True), ("e", True), ("top.txt", False)]
        for prefix in ("d", "d/sub", "no/such"):
            listed = sorted((e.key, isinstance(e, Prefix)) for e in driver.list(prefix))
            assert sorted(driver.list_names(prefix)) == listed

    def test_list_recursive(self, driver: Driver[Any]) -> None:
        for key in ("d/one.txt", "d/sub/two.txt", "d/sub/deeper/three.txt", "other.txt"):
            _put(driver, key, b"x")
        found = sorted(e.key for e in driver.list("d", recursive=True))
        assert found == ["d/one.txt", "d/sub/deeper/three.txt", "d/sub/two.txt"]

    def test_list_does_not_match_sibling_prefixes(self, driver: Driver[Any]) -> None:
        _put(driver, "dir/a.txt", b"x")
        _put(driver, "dirt/b.txt", b"x")
        _put(driver, "dir.txt", b"x")
        assert [e.key for e in driver.list("dir", recursive=True)] == ["dir/a.txt"]

    def test_list_missing_directory_is_empty(self, driver: Driver[Any]) -> None:
        assert list(driver.list("no/such/dir")) == []
        assert list(driver.list("no/such/dir", recursive=True)) == []

    def test_list_spans_pages(self, driver: Driver[Any]) -> None:
        for index in range(self.many_keys):
            _put(driver, f"many/{index:05d}", b"")
        keys = [e.key for e in driver.list("many")]
        assert len(keys) == self.many_keys
        assert len(set(keys)) == self.many_keys

    def test_unicode_and_space_keys(self, driver: Driver[Any]) -> None:
        key = "ünï cødé/文件 名.txt"
        _put(driver, key, "ünï".encode())
        assert _read(driver, key) == "ünï".encode()
        assert [e.key for e in driver.list("ünï cødé")] == [key]

    def test_put_streams_in_chunks(self, driver: Driver[Any]) -> None:
        stream = _StrictStream(self.large_size)
        info = driver.put("big.bin", stream, size=self.large_size)
        assert info.size == self.large_size
        digest = hashlib.sha256()
        download = driver.get("big.bin")
        try:
            for chunk in download:
                digest.update(chunk)
        finally:
            download.close()
        assert digest.hexdigest() == stream.digest.hexdigest()

    def test_put_without_size_streams(self, driver: Driver[Any]) -> None:
        stream = _StrictStream(3 * MiB + 17)
        driver.put("unsized.bin", stream)
        assert driver.head("unsized.bin").size == 3 * MiB + 17

    def test_failed_put_leaves_nothing(self, driver: Driver[Any]) -> None:
        with pytest.raises(OSError, match="mid-stream"):
            driver.put("broken.bin", _StrictStream(self.large_size, fail_at=MiB))
        assert not driver.exists("broken.bin")
        assert [e.key for e in driver.list("", recursive=True)] == []

    def test_failed_put_keeps_the_old_object(self, driver: Driver[Any]) -> None:
        _put(driver, "keep.bin", b"old content")
        with pytest.raises(OSError, match="mid-stream"):
            driver.put("keep.bin", _StrictStream(self.large_size, fail_at=MiB))
        assert _read(driver, "keep.bin") == b"old content"

    def test_copy(self, driver: Driver[Any]) -> None:
        _put(driver, "src.txt", b"copy me", content_type="text/plain")
        info = driver.copy("src.txt", "dst/copy.txt")
        assert info.size == 7
        assert _read(driver, "dst/copy.txt") == b"copy me"
        assert _read(driver, "src.txt") == b"copy me"

    def test_sign_or_refuse(self, driver: Driver[Any]) -> None:
        _put(driver, "s.txt", b"signed")
        if Capability.SIGN in driver.capabilities:
            url = driver.sign("s.txt", method="GET", expires=dt.timedelta(minutes=5))
            assert url.startswith(("http://", "https://"))
            assert "?" in url, f"a signed URL without a query: {url}"
            usual = driver.signer(expires=dt.timedelta(minutes=5))("s.txt")
            assert usual.startswith(url.split("?")[0] + "?"), (usual, url)
            record(self, "sign()", CHECKED)
        else:
            with pytest.raises(NotImplementedError) as refused:
                driver.sign("s.txt", method="GET", expires=dt.timedelta(minutes=5))
            record(self, "sign()", REFUSED, refused.type.__name__)

    def test_local_path_or_refuse(self, driver: Driver[Any]) -> None:
        _put(driver, "p.txt", b"path")
        if Capability.LOCAL_PATH in driver.capabilities:
            with open(driver.local_path("p.txt"), "rb") as handle:
                assert handle.read() == b"path"
            record(self, "local_path()", CHECKED)
        else:
            with pytest.raises(NotImplementedError) as refused:
                driver.local_path("p.txt")
            record(self, "local_path()", REFUSED, refused.type.__name__)
