"""within(): asyncio.timeout's meaning for one awaited request, with one timer."""

from __future__ import annotations

import asyncio

import pytest

from stowage.drivers._deadline import within


def test_the_result_comes_back_and_the_timer_is_cancelled() -> None:
    async def main() -> tuple[str, int]:
        result = await within(5, asyncio.sleep(0, "answer"))
        loop = asyncio.get_running_loop()
        pending = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return result, len(pending)

    assert asyncio.run(main()) == ("answer", 0)


def test_past_the_deadline_the_request_is_cancelled_and_timeout_raised() -> None:
    cancelled = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> int:
        with pytest.raises(TimeoutError, match=r"no answer within 0\.05 s"):
            await within(0.05, slow())
        task = asyncio.current_task()
        assert task is not None
        # The task may go on awaiting: the deadline's cancellation was taken back.
        await asyncio.sleep(0)
        return task.cancelling()

    assert asyncio.run(main()) == 0
    assert cancelled == [True]


def test_a_cancellation_from_elsewhere_propagates_unchanged() -> None:
    async def main() -> None:
        task = asyncio.create_task(within(5, asyncio.sleep(10)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancellation_arriving_after_the_deadline_fired_is_not_swallowed() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            # The deadline cancelled this request; somebody else cancels the task meanwhile.
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            raise

    async def main() -> None:
        task = asyncio.create_task(within(0.01, stubborn()))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_outside_a_task_it_refuses_and_closes_the_request() -> None:
    request = asyncio.sleep(0)
    runner = within(1, request)
    with pytest.raises(RuntimeError, match="no running event loop"):
        runner.send(None)
    assert request.cr_frame is None  # closed, so never left unawaited
