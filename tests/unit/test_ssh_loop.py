"""The SFTP driver's loop thread: blocking calls, awaited calls, and their failures."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stowage.drivers._ssh_loop import LoopThread, loop_thread


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fail() -> None:
    await asyncio.sleep(0)
    raise KeyError("missing")


def test_a_blocking_call_runs_on_the_loop_thread_and_returns_its_result() -> None:
    assert loop_thread().run(_where()) == "stowage-sftp"


def test_a_blocking_call_raises_what_the_coroutine_raised() -> None:
    with pytest.raises(KeyError, match="missing"):
        loop_thread().run(_fail())


def test_many_threads_share_the_loop() -> None:
    runner = loop_thread()
    results: list[str] = []

    def call() -> None:
        for _ in range(50):
            results.append(runner.run(_where()))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["stowage-sftp"] * 400


def test_an_awaited_call_runs_on_the_loop_thread() -> None:
    assert asyncio.run(loop_thread().run_async(_where())) == "stowage-sftp"


def test_a_blocking_call_from_the_loop_itself_is_refused() -> None:
    runner = loop_thread()

    async def nested() -> None:
        runner.run(_where())

    with pytest.raises(RuntimeError, match="from the SFTP event loop itself"):
        runner.run(nested())


def test_a_closed_loop_refuses_the_call() -> None:
    runner = LoopThread()
    runner.loop.call_soon_threadsafe(runner.loop.stop)
    runner._thread.join(timeout=5)
    runner.loop.close()
    coroutine = _where()
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(coroutine)
    assert coroutine.cr_frame is None  # closed, never left unawaited
