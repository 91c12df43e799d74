"""The SFTP driver's shared event loop: who runs it, handing work over, and failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from stowage.drivers._ssh_loop import IDLE, SharedLoop, shared_loop


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fail() -> None:
    await asyncio.sleep(0)
    raise KeyError("missing")


@pytest.fixture
def runner() -> Iterator[SharedLoop]:
    loop = SharedLoop()
    yield loop
    loop.close()


def test_a_blocking_call_runs_the_loop_on_the_calling_thread(runner: SharedLoop) -> None:
    assert runner.run(_where()) == threading.current_thread().name


def test_a_blocking_call_raises_what_the_coroutine_raised(runner: SharedLoop) -> None:
    with pytest.raises(KeyError, match="missing"):
        runner.run(_fail())
    assert runner.run(_where()) == threading.current_thread().name  # the loop was let go


def test_a_blocking_call_outlasts_a_stop_it_did_not_ask_for(runner: SharedLoop) -> None:
    async def stopped_midway() -> str:
        runner.loop.stop()  # as a task left by an interrupted call stops the loop it ends on
        await asyncio.sleep(0.01)
        return "done"

    assert runner.run(stopped_midway()) == "done"


def test_an_interrupted_call_lets_the_loop_go_and_the_next_call_runs(runner: SharedLoop) -> None:
    release = asyncio.Event()

    def interrupt() -> None:
        raise KeyboardInterrupt

    async def interrupted() -> str:
        runner.loop.call_soon(interrupt)
        await release.wait()
        return "late"

    with pytest.raises(KeyboardInterrupt):
        runner.run(interrupted())

    async def release_then_wait() -> str:
        release.set()  # the interrupted call's task ends during this call, stopping the loop
        await asyncio.sleep(0.01)
        return "next"

    assert runner.run(release_then_wait()) == "next"


def test_many_threads_share_the_loop_each_call_ending_once(runner: SharedLoop) -> None:
    results: list[int] = []

    async def slow(value: int) -> int:
        await asyncio.sleep(0.001)
        return value

    def call(base: int) -> None:
        for index in range(50):
            results.append(runner.run(slow(base + index)))

    threads = [threading.Thread(target=call, args=(base * 100,)) for base in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [base * 100 + index for base in range(8) for index in range(50)]


def test_a_call_handed_over_ends_when_the_thread_running_the_loop_lets_it_go(
    runner: SharedLoop,
) -> None:
    # One caller holds the loop; another's work runs under it, and the second
    # caller takes the loop over when the first one's call ends.
    release = threading.Event()

    async def hold() -> str:
        while not release.is_set():
            await asyncio.sleep(0.001)
        return "held"

    async def after() -> str:
        await asyncio.sleep(0.05)  # still running when the holder lets go
        return threading.current_thread().name

    holder = threading.Thread(target=lambda: runner.run(hold()), name="holder")
    holder.start()
    time.sleep(0.05)
    future = runner.submit(after())
    release.set()
    assert runner.wait(future) in ("holder", threading.current_thread().name, "stowage-sftp")
    holder.join(timeout=5)
    assert not holder.is_alive()


def test_awaited_calls_run_on_the_serving_thread(runner: SharedLoop) -> None:
    assert asyncio.run(runner.run_async(_where())) == "stowage-sftp"


def test_work_left_behind_runs_without_any_caller(runner: SharedLoop) -> None:
    # A coroutine handed over that nobody waits on still ends (reads ahead,
    # closes sent without waiting): the serving thread runs the loop.
    future = runner.submit(_where())
    assert future.result(timeout=5) == "stowage-sftp"


def test_an_idle_loop_is_run_by_the_serving_thread(runner: SharedLoop) -> None:
    # Timers and answers on an idle connection (keep-alives) are served.
    fired = threading.Event()
    runner.run(_where())
    runner.loop.call_soon_threadsafe(runner.loop.call_later, 0.01, fired.set)
    assert fired.wait(timeout=5 + IDLE)


def test_a_blocking_call_takes_the_loop_from_the_serving_thread(runner: SharedLoop) -> None:
    time.sleep(IDLE * 3)  # the serving thread now runs the idle loop
    assert runner.run(_where()) == threading.current_thread().name


def test_a_blocking_call_from_inside_another_event_loop_is_run_for_it(
    runner: SharedLoop,
) -> None:
    async def caller() -> str:
        return runner.run(_where())

    assert asyncio.run(caller()) == "stowage-sftp"


def test_a_blocking_call_from_the_loop_itself_is_refused(runner: SharedLoop) -> None:
    async def nested() -> None:
        runner.run(_where())

    with pytest.raises(RuntimeError, match="from the SFTP event loop itself"):
        runner.run(nested())


def test_a_closed_loop_refuses_the_call() -> None:
    runner = SharedLoop()
    runner.close()
    coroutine = _where()
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(coroutine)
    assert coroutine.cr_frame is None  # closed, never left unawaited
    coroutine = _where()
    future = runner.submit(coroutine)
    with pytest.raises(RuntimeError, match="closed"):
        future.result(timeout=5)
    assert coroutine.cr_frame is None


def test_the_process_shares_one_loop() -> None:
    assert shared_loop() is shared_loop()


def test_holding_keeps_the_loop_stopped_for_the_block(runner: SharedLoop) -> None:
    with runner.holding() as held:
        assert held
        assert not runner.loop.is_running()
        handed_over = runner.submit(_where())
        time.sleep(IDLE * 3)
        assert not handed_over.done()  # no thread ran the loop meanwhile
    assert handed_over.result(timeout=5) == "stowage-sftp"  # let go: the work runs


def test_holding_takes_the_loop_from_the_serving_thread(runner: SharedLoop) -> None:
    time.sleep(IDLE * 3)  # the serving thread now runs the idle loop
    with runner.holding() as held:
        assert held
        assert not runner.loop.is_running()


def test_holding_yields_false_while_another_caller_runs_the_loop(runner: SharedLoop) -> None:
    release = threading.Event()
    running = threading.Event()

    async def hold() -> None:
        running.set()
        while not release.is_set():
            await asyncio.sleep(0.001)

    holder = threading.Thread(target=lambda: runner.run(hold()))
    holder.start()
    assert running.wait(timeout=5)
    try:
        with runner.holding() as held:
            assert not held
    finally:
        release.set()
        holder.join(timeout=5)
    with runner.holding() as held:
        assert held


def test_holding_yields_false_inside_an_event_loop(runner: SharedLoop) -> None:
    async def inside() -> bool:
        with runner.holding() as held:
            return held

    assert asyncio.run(inside()) is False
    assert runner.run(inside()) is False  # the shared loop itself
