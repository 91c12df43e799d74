"""The SFTP wire client against OpenSSH's sftp-server, run directly on its pipes."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from stowage.drivers.sftp import packets
from stowage.drivers.sftp.packets import (
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
    Attrs,
    ConnectionLost,
    Failure,
    NoSuchFile,
    OpUnsupported,
    PermissionDenied,
    Reader,
    StatusError,
)
from stowage.drivers.sftp.process import NotNow
from stowage.drivers.sftp.wire import WINDOW, WireClient, WireFile

SERVER = "/usr/lib/openssh/sftp-server"
#: Seconds any one test may take on the loop.
TIMEOUT = 60
#: What OpenSSH's sftp-server reads and writes per request (its limits@openssh.com).
OPENSSH_BLOCK = 261120

T = TypeVar("T")


def run(test: Callable[[WireClient], Awaitable[T]], *options: str) -> T:
    """Run ``test`` with a client of a new sftp-server, and stop the server afterwards."""
    server_exists()

    async def main() -> T:
        client = await WireClient.start([SERVER, *options])
        try:
            return await asyncio.wait_for(test(client), TIMEOUT)
        finally:
            await client.close()

    return asyncio.run(main())


def server_exists() -> None:
    if not os.access(SERVER, os.X_OK):
        pytest.fail(
            f"{SERVER} is missing: these tests need OpenSSH's SFTP server "
            "(Debian, Ubuntu: apt-get install openssh-sftp-server)."
        )


class Requests:
    """Count the requests a client sends by type, and the most in flight at once."""

    def __init__(self, client: WireClient, monkeypatch: pytest.MonkeyPatch) -> None:
        session = client._session
        send = session.send
        self.kinds: collections.Counter[int] = collections.Counter()
        self.most_pending = 0

        def recording(kind: int, *args: Any, **kwargs: Any) -> Any:
            future = send(kind, *args, **kwargs)
            self.kinds[kind] += 1
            self.most_pending = max(self.most_pending, len(session.pending))
            return future

        monkeypatch.setattr(session, "send", recording)


async def write_file(client: WireClient, path: Path, data: bytes) -> None:
    async with client.open(str(path), FXF_WRITE | FXF_CREAT | FXF_TRUNC) as f:
        assert await f.write(data) == len(data)


# The packets, without a server.


def test_attrs_round_trip_and_pairs() -> None:
    attrs = Attrs(size=2**40, uid=1000, gid=100, permissions=0o100644, atime=5, mtime=7)
    assert Reader(attrs.encode()).attrs() == attrs
    assert Reader(Attrs(permissions=0o600).encode()).attrs() == Attrs(permissions=0o600)
    assert Attrs().encode() == packets.uint32(0)
    assert attrs.atime_ns is None
    assert attrs.mtime_ns is None
    with pytest.raises(ValueError, match="uid and gid"):
        Attrs(uid=1).encode()
    with pytest.raises(ValueError, match="atime and mtime"):
        Attrs(mtime=1).encode()


def test_attrs_skip_extended_pairs() -> None:
    flags = packets.ATTR_SIZE | packets.ATTR_EXTENDED
    encoded = (
        packets.uint32(flags)
        + packets.uint64(42)
        + packets.uint32(2)
        + packets.string("a@example.com")
        + packets.string(b"\x00\x01")
        + packets.string("b@example.com")
        + packets.string(b"")
    )
    reader = Reader(encoded + packets.uint32(99))
    assert reader.attrs() == Attrs(size=42)
    assert reader.uint32() == 99
    assert reader.at_end()
    with pytest.raises(packets.BadMessage):
        Reader(encoded[:-3]).attrs()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1, packets.EndOfFile),
        (2, NoSuchFile),
        (3, PermissionDenied),
        (4, Failure),
        (5, packets.BadMessage),
        (6, packets.NoConnection),
        (7, ConnectionLost),
        (8, OpUnsupported),
        (10, packets.NoSuchPath),
        (11, packets.FileAlreadyExists),
        (12, packets.WriteProtect),
        (14, packets.NoSpaceOnFilesystem),
        (15, packets.QuotaExceeded),
        (18, packets.DirNotEmpty),
    ],
)
def test_status_error_classes(code: int, cls: type[StatusError]) -> None:
    exc = packets.status_error(code, "server says")
    assert type(exc) is cls
    assert (exc.code, exc.reason, str(exc)) == (code, "server says", "server says")
    assert str(packets.status_error(code, "")) == cls.DEFAULT


def test_unknown_status_code() -> None:
    exc = packets.status_error(99, "")
    assert type(exc) is StatusError
    assert exc.code == 99
    assert str(exc)


# The session.


def test_start_reads_extensions_and_limits() -> None:
    async def test(client: WireClient) -> None:
        assert "posix-rename@openssh.com" in client.extensions
        assert client.supports_remote_copy
        assert client.max_read == client.max_write == OPENSSH_BLOCK
        assert not client.is_closed()

    run(test)


def test_without_limits_the_blocks_are_32_kib() -> None:
    async def test(client: WireClient) -> None:
        assert "limits@openssh.com" not in client.extensions
        assert client.max_read == client.max_write == 32 * 1024

    run(test, "-P", "limits")


def test_start_fails_naming_what_the_program_said() -> None:
    async def main() -> None:
        with pytest.raises(ConnectionLost, match=r"exited with status 3 .*: nope$"):
            await WireClient.start(["sh", "-c", "echo nope >&2; exit 3"])
        with pytest.raises(ConnectionLost, match="from-env"):
            await WireClient.start(
                ["sh", "-c", 'echo "$WIRE_TEST" >&2; exit 1'],
                env={"WIRE_TEST": "from-env", "PATH": os.environ["PATH"]},
            )

    asyncio.run(main())


def test_cancelled_start_kills_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "pid"
    started: list[WireClient] = []
    handshake = WireClient._handshake

    async def recording(client: WireClient, program: str) -> None:
        started.append(client)
        await handshake(client, program)

    monkeypatch.setattr(WireClient, "_handshake", recording)

    async def main() -> None:
        argv = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(WireClient.start(argv), 0.5)
        [client] = started
        assert client.is_closed()
        pid = int(pid_file.read_text())
        for _ in range(100):  # until it is reaped
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail(f"process {pid} still runs")
        await client.close()  # collects the exit status

    asyncio.run(main())


def test_stderr_is_kept() -> None:
    server_exists()

    async def main() -> None:
        client = await WireClient.start(["sh", "-c", f"echo hello >&2; exec {SERVER}"])
        try:
            for _ in range(100):
                await client.stat("/")
                if "hello" in client.stderr_text():
                    return
                await asyncio.sleep(0.01)
            pytest.fail(f"stderr: {client.stderr_text()!r}")
        finally:
            await client.close()

    asyncio.run(main())


def test_abort_fails_outstanding_requests(tmp_path: Path) -> None:
    data = random.randbytes(2 * 1024 * 1024)
    (tmp_path / "big").write_bytes(data)

    async def test(client: WireClient) -> None:
        f = await client.open(str(tmp_path / "big"), FXF_READ)
        pid = client._session.transport.get_pid()  # type: ignore[union-attr]
        reading = asyncio.ensure_future(f.read())
        stat_ = asyncio.ensure_future(client.stat("/"))
        await asyncio.sleep(0)  # both sent, no answer read yet
        assert client._session.pending
        client.abort()
        assert client.is_closed()
        for task in (reading, stat_):
            with pytest.raises(ConnectionLost, match="aborted"):
                await task
        with pytest.raises(ConnectionLost):
            await client.stat("/")
        client.abort()  # again: nothing happens
        await client.close()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    run(test)


def test_a_server_that_dies_ends_the_session() -> None:
    async def test(client: WireClient) -> None:
        transport = client._session.transport
        assert transport is not None
        transport.kill()

        async def stat_until_lost() -> None:
            for _ in range(1000):
                await client.stat("/")

        with pytest.raises(ConnectionLost):
            await stat_until_lost()
        assert client.is_closed()

    run(test)


def test_close_ends_the_process() -> None:
    async def test(client: WireClient) -> None:
        await client.close()
        assert client.is_closed()
        transport = client._session.transport
        assert transport is not None
        assert transport.get_returncode() == 0
        await client.close()
        with pytest.raises(ConnectionLost, match="closed"):
            await client.stat("/")

    run(test)


# Reads and writes.


def test_round_trip_of_5_mib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.randbytes(5 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"

    async def test(client: WireClient) -> None:
        requests = Requests(client, monkeypatch)
        await write_file(client, path, data)
        assert path.read_bytes() == data
        assert requests.kinds[packets.FXP_WRITE] == -(-len(data) // OPENSSH_BLOCK)
        assert 1 < requests.most_pending <= WINDOW

        requests.most_pending = 0
        async with client.open(str(path), FXF_READ) as f:
            assert await f.read() == data
            assert 1 < requests.most_pending <= WINDOW
            assert await f.read(len(data) + 10**6) == data
            rng = random.Random(7)
            for _ in range(40):
                offset = rng.randrange(len(data))
                size = rng.choice([1, 7, 4095, 65537, OPENSSH_BLOCK + 1, 1_000_003])
                assert await f.read(size, offset) == data[offset : offset + size]
            f.read_len = 1000
            requests.kinds.clear()
            assert await f.read(100_001, 333) == data[333:100_334]
            assert requests.kinds[packets.FXP_READ] == 101
            assert (await f.stat()).size == len(data)

    run(test)


def test_block_size_sets_request_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.randbytes(100_000)
    path = tmp_path / "f"

    async def test(client: WireClient) -> None:
        requests = Requests(client, monkeypatch)
        flags = FXF_WRITE | FXF_CREAT | FXF_READ
        async with client.open(str(path), flags, block_size=10_000) as f:
            assert f.read_len == 10_000
            await f.write(data, 0)
            assert requests.kinds[packets.FXP_WRITE] == 10
            assert await f.read() == data
        async with client.open(str(path), FXF_READ, block_size=0) as f:
            assert f.read_len == 0
            requests.kinds.clear()
            assert await f.read(50_000, 1) == data[1:50_001]
            assert requests.kinds[packets.FXP_READ] == 1
            # Short at the end of the file, without a second request to find the end.
            assert await f.read(50_000, 90_000) == data[90_000:]
            assert await f.read(50_000, 100_000) == b""
            assert requests.kinds[packets.FXP_READ] == 3
        with pytest.raises(ValueError, match="bytes"):
            client.open(str(path), FXF_READ, encoding="utf-8")  # type: ignore[arg-type]

    run(test)


def test_short_answers_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.randbytes(3 * 1024 * 1024)
    path = tmp_path / "f"
    path.write_bytes(data)

    async def test(client: WireClient) -> None:
        # Asking more than the server's limit: it answers each read short.
        client.max_read = 1024 * 1024
        requests = Requests(client, monkeypatch)
        async with client.open(str(path), FXF_READ) as f:
            assert f.read_len == 1024 * 1024
            assert await f.read(len(data) - 5, 5) == data[5:]
            assert await f.read() == data
            assert requests.kinds[packets.FXP_READ] > 2 * len(data) // (1024 * 1024)
            # read_len 0: one request, whatever the server makes of it.
            f.read_len = 0
            requests.kinds.clear()
            assert await f.read(1024 * 1024, 7) == data[7 : 7 + OPENSSH_BLOCK]
            assert await f.read(100, len(data) - 1) == data[-1:]
            assert await f.read(100, len(data)) == b""
            assert requests.kinds[packets.FXP_READ] == 3

    run(test)


def test_reads_at_and_past_the_end(tmp_path: Path) -> None:
    (tmp_path / "ten").write_bytes(b"0123456789")
    (tmp_path / "empty").write_bytes(b"")

    async def test(client: WireClient) -> None:
        async with client.open(str(tmp_path / "ten"), FXF_READ) as f:
            assert await f.read(100, 7) == b"789"
            assert await f.read(5, 10) == b""
            assert await f.read(5, 10**9) == b""
            assert await f.read(-1, 10) == b""
            assert await f.read(0) == b""
            assert await f.read(-1, 3) == b"3456789"
        async with client.open(str(tmp_path / "empty"), FXF_READ) as f:
            assert await f.read() == b""

    run(test)


def test_write_error_after_outstanding_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def test(client: WireClient) -> None:
        requests = Requests(client, monkeypatch)
        async with client.open(str(path), FXF_READ) as f:
            for blocks in (3, WINDOW + 4):
                requests.kinds.clear()
                with pytest.raises(StatusError) as caught:
                    await f.write(b"y" * (blocks * OPENSSH_BLOCK), 0)
                # sftp-server refuses a write on a handle opened for reading (its
                # code depends on the errno it meets: NoSuchFile here, from EBADF).
                assert caught.value.code in (2, 3, 4)
                assert not client._session.pending  # every reply came back
                # The first error stops the sending.
                assert requests.kinds[packets.FXP_WRITE] == min(blocks, WINDOW)
            assert await f.read() == b"x"
        assert path.read_bytes() == b"x"

    run(test)


def test_async_with_closes_the_handle(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"content")

    async def test(client: WireClient) -> None:
        async with client.open(str(path), FXF_READ) as f:
            handle = f._handle
            stale = WireFile(client, handle)
            assert await stale.read() == b"content"
        with pytest.raises(ValueError, match="closed"):
            await f.read()
        with pytest.raises(Failure):  # the server forgot the handle
            await stale.read()
        await f.close()  # again: nothing happens

        with pytest.raises(KeyError):
            async with client.open(str(path), FXF_READ) as f:
                raise KeyError("the block's error")
        with pytest.raises(ValueError, match="closed"):
            await f.stat()

        opened = await client.open(str(path), FXF_READ)
        assert isinstance(opened, WireFile)
        async with opened:
            assert (await opened.stat()).size == 7
        with pytest.raises(Failure):
            await WireFile(client, opened._handle).stat()

    run(test)


def test_a_cancelled_open_closes_its_handle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_bytes(b"")

    async def test(client: WireClient) -> None:
        requests = Requests(client, monkeypatch)
        opening = asyncio.ensure_future(client.open(str(tmp_path / "f"), FXF_READ))
        await asyncio.sleep(0)
        opening.cancel()
        await client.stat("/")  # the open's answer came before this one
        assert requests.kinds[packets.FXP_CLOSE] == 1

    run(test)


# Names and attributes.


def test_readdir_of_300_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    for i in range(300):
        (directory / f"f{i:03}").write_bytes(b"x" * i)
    (directory / "sub").mkdir()

    async def test(client: WireClient) -> None:
        requests = Requests(client, monkeypatch)
        names = await client.readdir(str(directory))
        assert requests.kinds[packets.FXP_READDIR] > 2  # batches, then EOF
        assert requests.kinds[packets.FXP_CLOSE] == 1
        found = {name.filename: name.attrs for name in names}
        assert len(names) == len(found) == 303
        assert {".", "..", "sub"} <= set(found)
        assert found["f123"].size == 123
        assert stat.S_ISREG(found["f123"].permissions or 0)
        assert stat.S_ISDIR(found["sub"].permissions or 0)
        assert await client.readdir(str(directory / "sub")) != []

    run(test)


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/\xff.txt", os.O_CREAT | os.O_WRONLY))

    async def test(client: WireClient) -> None:
        names = {name.filename for name in await client.readdir(str(tmp_path))}
        assert "\udcff.txt" in names
        assert (await client.stat(f"{tmp_path}/\udcff.txt")).size == 0

    run(test)


def test_stat_and_lstat(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "f")

    async def test(client: WireClient) -> None:
        followed = await client.stat(str(tmp_path / "link"))
        assert followed.size == 3
        assert stat.S_ISREG(followed.permissions or 0)
        assert stat.S_ISLNK((await client.lstat(str(tmp_path / "link"))).permissions or 0)
        assert followed.mtime == int(os.stat(tmp_path / "f").st_mtime)

    run(test)


def test_setstat_and_fsetstat(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    path.chmod(0o644)

    async def test(client: WireClient) -> None:
        await client.setstat(str(path), Attrs(permissions=0o600))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE((await client.stat(str(path))).permissions or 0) == 0o600
        await client.setstat(str(path), Attrs(atime=1_000_000, mtime=2_000_000))
        assert path.stat().st_mtime == 2_000_000
        async with client.open(str(path), FXF_READ | FXF_WRITE) as f:
            await client.setstat(f, Attrs(permissions=0o640))
            assert stat.S_IMODE(path.stat().st_mode) == 0o640
            await f.setstat(Attrs(permissions=0o604, size=1))
            assert stat.S_IMODE((await f.stat()).permissions or 0) == 0o604
        assert path.read_bytes() == b"a"
        with pytest.raises(NoSuchFile):
            await client.setstat(str(tmp_path / "missing"), Attrs(permissions=0o600))

    run(test)


def test_mkdir_and_rmdir(tmp_path: Path) -> None:
    directory = tmp_path / "d"

    async def test(client: WireClient) -> None:
        await client.mkdir(str(directory))
        assert directory.is_dir()
        with pytest.raises(Failure):
            await client.mkdir(str(directory))
        await client.mkdir(str(directory / "private"), Attrs(permissions=0o700))
        assert stat.S_IMODE((directory / "private").stat().st_mode) == 0o700
        await client.rmdir(str(directory / "private"))
        assert not (directory / "private").exists()
        with pytest.raises(NoSuchFile):
            await client.mkdir(str(tmp_path / "missing" / "d"))

    run(test)


# Errors.


def test_errors(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"")
    missing = str(tmp_path / "missing")

    async def test(client: WireClient) -> None:
        for request in (
            client.stat(missing),
            client.lstat(missing),
            client.remove(missing),
            client.rmdir(missing),
            client.readdir(missing),
            client.rename(missing, str(tmp_path / "c")),
            client.open(missing, FXF_READ),
        ):
            with pytest.raises(NoSuchFile) as caught:
                await request
            assert caught.value.code == 2
            assert str(caught.value)
        with pytest.raises(Failure) as failed:
            await client.rmdir(str(tmp_path / "full"))
        assert failed.value.code == 4
        with pytest.raises(Failure):
            await client.rename(str(tmp_path / "a"), str(tmp_path / "b"))
        assert (tmp_path / "a").read_bytes() == b"a"
        with pytest.raises(Failure):
            await client.open(str(tmp_path / "a"), FXF_WRITE | FXF_CREAT | FXF_EXCL)
        with pytest.raises(Failure):
            await client.remove(str(tmp_path / "full"))
        assert not client.is_closed()

    run(test)


def test_denied_requests(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")

    async def test(client: WireClient) -> None:
        with pytest.raises(PermissionDenied) as caught:
            await client.remove(str(tmp_path / "a"))
        assert caught.value.code == 3
        assert (tmp_path / "a").exists()
        assert not client.supports_remote_copy
        with pytest.raises(OpUnsupported):
            await client.posix_rename(str(tmp_path / "a"), str(tmp_path / "b"))
        async with client.open(str(tmp_path / "a"), FXF_READ) as f:
            with pytest.raises(OpUnsupported):
                await client.remote_copy(f, f)
        assert (tmp_path / "a").exists()

    run(test, "-P", "remove,posix-rename,copy-data")


# Renames and copies.


def test_renames(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")

    async def test(client: WireClient) -> None:
        await client.posix_rename(str(tmp_path / "a"), str(tmp_path / "b"))
        assert (tmp_path / "b").read_bytes() == b"new"
        assert not (tmp_path / "a").exists()
        await client.rename(str(tmp_path / "b"), str(tmp_path / "c"))
        assert (tmp_path / "c").read_bytes() == b"new"
        await client.remove(str(tmp_path / "c"))
        assert list(tmp_path.iterdir()) == []

    run(test)


def test_remote_copy(tmp_path: Path) -> None:
    data = random.randbytes(1_000_000)
    (tmp_path / "src").write_bytes(data)

    async def test(client: WireClient) -> None:
        async with (
            client.open(str(tmp_path / "src"), FXF_READ) as src,
            client.open(str(tmp_path / "dst"), FXF_WRITE | FXF_CREAT | FXF_READ) as dst,
        ):
            await client.remote_copy(src, dst)
            assert (tmp_path / "dst").read_bytes() == data
            await client.remote_copy(src, dst, 10, 20, 5)
            assert await dst.read(30) == data[:5] + data[10:30] + data[25:30]
        async with (
            client.open(str(tmp_path / "part"), FXF_WRITE | FXF_CREAT) as part,
            client.open(str(tmp_path / "src"), FXF_READ) as src,
        ):
            await client.remote_copy(src, part, src_offset=999_000)
        assert (tmp_path / "part").read_bytes() == data[999_000:]

    run(test)


def test_stat_now_answers_on_the_calling_thread(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")

    async def test(client: WireClient) -> None:
        attrs = client.stat_now(str(tmp_path / "a"), 5)
        assert attrs.size == 3
        assert attrs.permissions
        assert stat.S_ISREG(attrs.permissions)
        with pytest.raises(NoSuchFile):
            client.stat_now(str(tmp_path / "missing"), 5)
        assert not client._session.pending
        assert (await client.stat(str(tmp_path / "a"))).size == 3  # the loop goes on

    run(test)


def test_stat_now_sends_nothing_when_it_cannot_write_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"abc")

    async def test(client: WireClient) -> None:
        session = client._session
        first = session.next_id
        with pytest.raises(NotNow):
            client.stat_now("/" + "x" * 5000, 5)  # longer than one atomic pipe write
        assert session.stdin is not None
        monkeypatch.setattr(session.stdin, "get_write_buffer_size", lambda: 1)
        with pytest.raises(NotNow):
            client.stat_now(str(tmp_path / "a"), 5)  # writes are queued before it
        monkeypatch.undo()
        assert session.next_id == first
        assert not session.pending
        assert client.stat_now(str(tmp_path / "a"), 5).size == 3

    run(test)


def test_stat_now_times_out_and_leaves_the_late_reply_unclaimed(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "bb").write_bytes(b"bb")

    async def test(client: WireClient) -> None:
        session = client._session
        assert session.transport is not None
        pid = session.transport.get_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(TimeoutError):
                client.stat_now(str(tmp_path / "a"), 0.2)
            assert not session.pending
        finally:
            os.kill(pid, signal.SIGCONT)
        # The late answer (3 bytes) is dropped; the next request gets its own.
        assert client.stat_now(str(tmp_path / "bb"), 5).size == 2
        assert (await client.stat(str(tmp_path / "bb"))).size == 2

    run(test)


def test_stat_now_on_a_server_that_died_ends_the_session(tmp_path: Path) -> None:
    async def test(client: WireClient) -> None:
        session = client._session
        assert session.transport is not None
        os.kill(session.transport.get_pid(), signal.SIGKILL)
        time.sleep(0.5)  # the loop does not run: stat_now itself finds the pipe broken
        assert not client.is_closed()
        with pytest.raises(ConnectionLost):
            client.stat_now(str(tmp_path), 5)
        assert client.is_closed()

    run(test)
