"""Check the async API of a stowage storage: same semantics as the sync one."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from stowage.drivers.base import MiB
from stowage.testing.report import CHECKED, record

__all__ = ["AsyncStorageContract"]

_T = TypeVar("_T")


def run(awaitable: Awaitable[_T]) -> _T:
    """Run one coroutine on a fresh event loop (no pytest plugin needed)."""

    async def main() -> _T:
        return await awaitable

    return asyncio.run(main())


async def _read(storage: Any, name: str) -> bytes:
    async with storage.aopen(name, "rb") as handle:
        data: bytes = await handle.read()
    return data


class AsyncStorageContract:
    """The async behaviours of a stowage storage; subclass and supply ``storage``.

    Mix it into a :class:`~stowage.testing.StorageContract` subclass: it uses
    the same ``storage`` fixture.
    """

    #: Saves racing for one name in the concurrency test.
    async_racers: int = 8
    #: Without atomic create: how many of ``async_racers`` same-name saves the backend
    #: promises survive under distinct names (each file is always whole). Required then.
    async_race_survivors_at_least: int | None = None
    #: Bytes of the large-content test.
    async_large_size: int = 5 * MiB

    def test_asave_then_aopen(self, storage: Any) -> None:
        async def scenario() -> None:
            name = await storage.asave("a/hello.txt", ContentFile(b"hello async"))
            assert name == "a/hello.txt"
            assert await _read(storage, name) == b"hello async"
            assert storage.open(name).read() == b"hello async"

        run(scenario())

    def test_asave_collision_gets_an_alternative_name(self, storage: Any) -> None:
        async def scenario() -> None:
            first = await storage.asave("dup.tar.gz", ContentFile(b"1"))
            second = await storage.asave("dup.tar.gz", ContentFile(b"2"))
            assert first == "dup.tar.gz"
            assert re.fullmatch(r"dup_[A-Za-z0-9]{7}\.tar\.gz", second), second
            assert await _read(storage, second) == b"2"

        run(scenario())

    def test_concurrent_asaves_keep_every_file(self, storage: Any) -> None:
        """With atomic create every racer survives; else the stated number, each file whole."""
        from stowage.drivers.base import Capability

        atomic = Capability.ATOMIC_CREATE in storage.driver.capabilities
        bound = self.async_race_survivors_at_least
        if not atomic:
            assert bound is not None, (
                f"{type(self).__name__} has no atomic create: declare "
                f"async_race_survivors_at_least, the fewest of {self.async_racers} "
                "same-name asave() calls the backend promises to keep"
            )

        async def scenario() -> list[str]:
            saves = [
                storage.asave("race.txt", ContentFile(f"racer {i}".encode()))
                for i in range(self.async_racers)
            ]
            return list(await asyncio.gather(*saves))

        saved = run(scenario())
        kept = sorted(set(saved))
        stored = [storage.open(n).read() for n in kept]
        expected = {f"racer {i}".encode() for i in range(self.async_racers)}
        # Never torn or mixed: each name holds one whole upload, and no upload twice.
        assert set(stored) <= expected, stored
        assert len(set(stored)) == len(stored), stored
        assert sorted(storage.listdir("")[1]) == kept
        if atomic:
            assert len(kept) == self.async_racers, saved
            detail = f"all {self.async_racers} kept, atomic create"
        else:
            assert bound is not None
            assert len(kept) >= bound, f"{len(kept)} of {self.async_racers} asaves survived"
            detail = f"at least {bound} of {self.async_racers} kept"
        record(self, "same-name race (async)", CHECKED, detail)

    def test_aexists_adelete_asize_alistdir(self, storage: Any) -> None:
        async def scenario() -> None:
            await storage.asave("d/one.txt", ContentFile(b"one"))
            await storage.asave("d/sub/two.txt", ContentFile(b"two!"))
            assert await storage.aexists("d/one.txt")
            assert await storage.aexists("d")
            assert await storage.asize("d/sub/two.txt") == 4
            dirs, files = await storage.alistdir("d")
            assert (dirs, files) == (["sub"], ["one.txt"])
            await storage.adelete("d/one.txt")
            await storage.adelete("d/one.txt")
            assert not await storage.aexists("d/one.txt")
            with pytest.raises(ValueError, match="name must be given"):
                await storage.adelete("")

        run(scenario())

    def test_aget_modified_time(self, storage: Any) -> None:
        async def scenario() -> dt.datetime:
            await storage.asave("t.txt", ContentFile(b"t"))
            modified: dt.datetime = await storage.aget_modified_time("t.txt")
            return modified

        modified = run(scenario())
        assert modified.tzinfo is not None
        assert abs(dt.datetime.now(dt.UTC) - modified) < dt.timedelta(minutes=5)

    def test_aopen_missing_raises_file_not_found(self, storage: Any) -> None:
        with pytest.raises(FileNotFoundError):
            run(_read(storage, "missing.bin"))

    def test_async_seek_and_partial_reads(self, storage: Any) -> None:
        data = bytes(range(256)) * 2048
        storage.save("seek.bin", ContentFile(data))

        async def scenario() -> None:
            async with storage.aopen("seek.bin") as handle:
                assert await handle.read(10) == data[:10]
                assert handle.tell() == 10
                await handle.seek(300_000)
                assert await handle.read(6) == data[300_000:300_006]
                await handle.seek(-4, os.SEEK_END)
                assert await handle.read() == data[-4:]
                assert await handle.asize() == len(data)

        run(scenario())

    def test_async_iteration_streams_everything(self, storage: Any) -> None:
        data = os.urandom(self.async_large_size)
        storage.save("big.bin", ContentFile(data))

        async def scenario() -> str:
            digest = hashlib.sha256()
            async with storage.aopen("big.bin") as handle:
                async for chunk in handle:
                    digest.update(chunk)
            return digest.hexdigest()

        assert run(scenario()) == hashlib.sha256(data).hexdigest()

    def test_async_write_modes(self, storage: Any) -> None:
        async def scenario() -> None:
            async with storage.aopen("w.bin", "wb") as handle:
                await handle.write(b"first,")
                await handle.write(b"second")
            assert await _read(storage, "w.bin") == b"first,second"
            async with storage.aopen("w.txt", "w") as handle:
                await handle.write("ünï")
            async with storage.aopen("w.txt", "r") as handle:
                assert await handle.read() == "ünï"

        run(scenario())

    def test_async_interrupted_write_leaves_nothing(self, storage: Any) -> None:
        async def scenario() -> None:
            async with storage.aopen("broken.bin", "wb") as handle:
                await handle.write(b"partial")
                raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            run(scenario())
        assert not storage.exists("broken.bin")

    @pytest.mark.parametrize("name", ["../escape", "/abs", "nul\x00"])
    def test_async_refuses_unsafe_names(self, storage: Any, name: str) -> None:
        async def scenario() -> None:
            with pytest.raises(SuspiciousFileOperation):
                await storage.asave(name, ContentFile(b"x"))
            with pytest.raises(SuspiciousFileOperation):
                await storage.aexists(name)
            with pytest.raises(SuspiciousFileOperation):
                storage.aopen(name)

        run(scenario())

    def test_aurl_matches_url(self, storage: Any) -> None:
        storage.save("u.txt", ContentFile(b"u"))
        assert run(storage.aurl("u.txt")).split("?")[0] == storage.url("u.txt").split("?")[0]
