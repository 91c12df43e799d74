"""The drivers' one retry policy: pauses, caps, deadlines and what is never retried."""

from __future__ import annotations

import asyncio

import pytest

from stowage.drivers.retry import DEFAULT_MAX_RETRIES, DEFAULT_POLICY, RetryPolicy


class Flaky:
    """Fail ``failures`` times with ``error``, then return ``"done"``."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("reset")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


def test_the_default_policy_is_the_default_of_max_retries() -> None:
    assert DEFAULT_MAX_RETRIES == 3
    assert DEFAULT_POLICY.retries == 3
    assert RetryPolicy.for_retries(0).attempts == 1
    assert RetryPolicy.for_retries(5, deadline=9.0) == RetryPolicy(attempts=6, deadline=9.0)


def test_ceilings_double_up_to_the_cap() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0, jitter=False)
    assert [policy.pause(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.pause(10_000) == 1.0


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base=0.05, cap=2.0)
    for attempt in range(8):
        pauses = [policy.pause(attempt) for _ in range(300)]
        ceiling = min(2.0, 0.05 * 2**attempt)
        assert all(0.0 <= p <= ceiling for p in pauses)
        # Jittered pauses differ; a fixed one would repeat.
        assert len(set(pauses)) > 1


def test_a_transient_failure_is_retried_after_a_pause() -> None:
    slept: list[float] = []
    flaky = Flaky(2)
    policy = RetryPolicy(attempts=4, base=0.1, cap=1.0, jitter=False)
    assert policy.run(flaky, retryable=transient, sleep=slept.append) == "done"
    assert flaky.calls == 3
    assert slept == [0.1, 0.2]


def test_the_last_failure_propagates_once_attempts_are_spent() -> None:
    slept: list[float] = []
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        RetryPolicy(attempts=3).run(flaky, retryable=transient, sleep=slept.append)
    assert flaky.calls == 3
    assert len(slept) == 2


def test_a_failure_the_predicate_rejects_is_not_retried() -> None:
    flaky = Flaky(1, PermissionError("denied"))
    with pytest.raises(PermissionError):
        DEFAULT_POLICY.run(flaky, retryable=transient, sleep=pytest.fail)
    assert flaky.calls == 1


def test_a_non_idempotent_operation_is_not_retried() -> None:
    flaky = Flaky(1)
    with pytest.raises(ConnectionError):
        DEFAULT_POLICY.run(flaky, retryable=transient, idempotent=False, sleep=pytest.fail)
    assert flaky.calls == 1


def test_idempotence_is_asked_after_the_failure() -> None:
    consumed = {"yes": False}

    def upload() -> str:
        consumed["yes"] = True
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        DEFAULT_POLICY.run(
            upload, retryable=transient, idempotent=lambda: not consumed["yes"], sleep=pytest.fail
        )


def test_a_non_idempotent_operation_is_retried_when_nothing_was_sent() -> None:
    slept: list[float] = []
    flaky = Flaky(1)
    result = DEFAULT_POLICY.run(
        flaky, retryable=transient, idempotent=False, unsent=lambda exc: True, sleep=slept.append
    )
    assert result == "done"
    assert len(slept) == 1


def test_no_retry_starts_past_the_deadline() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def failing() -> str:
        now[0] += 3.0  # each try takes three seconds
        raise ConnectionError("down")

    policy = RetryPolicy(attempts=100, base=1.0, cap=1.0, jitter=False, deadline=10.0)
    with pytest.raises(ConnectionError):
        policy.run(failing, retryable=transient, sleep=sleep, clock=lambda: now[0])
    # Tries end at 3, 7 and 11 s; the pause after the second ends at 8 s, the third would end at 12.
    assert slept == [1.0, 1.0]
    assert now[0] == 111.0


def test_a_rejected_result_is_retried_then_returned_as_it_is() -> None:
    answers = iter([503, 503, 200])
    slept: list[float] = []
    policy = RetryPolicy(attempts=4)
    status = policy.run(
        lambda: next(answers),
        retryable=transient,
        retry_result=lambda s: s >= 500,
        sleep=slept.append,
    )
    assert status == 200
    assert len(slept) == 2
    spent = RetryPolicy(attempts=2).run(
        lambda: 503, retryable=transient, retry_result=lambda s: s >= 500, sleep=slept.append
    )
    assert spent == 503
    sent_once = RetryPolicy(attempts=4).run(
        lambda: 503,
        retryable=transient,
        idempotent=False,
        retry_result=lambda s: s >= 500,
        sleep=pytest.fail,
    )
    assert sent_once == 503


def test_before_retry_runs_before_every_new_try() -> None:
    rewinds: list[int] = []
    flaky = Flaky(2)
    DEFAULT_POLICY.run(
        flaky,
        retryable=transient,
        before_retry=lambda: rewinds.append(flaky.calls),
        sleep=lambda s: None,
    )
    assert rewinds == [1, 2]


def test_the_async_runner_follows_the_same_policy() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky = Flaky(2)

    async def operation() -> str:
        return flaky()

    policy = RetryPolicy(attempts=3, base=0.5, cap=0.75, jitter=False)
    assert asyncio.run(policy.arun(operation, retryable=transient, sleep=sleep)) == "done"
    assert slept == [0.5, 0.75]

    once = Flaky(1)

    async def non_idempotent() -> str:
        return once()

    with pytest.raises(ConnectionError):
        asyncio.run(policy.arun(non_idempotent, retryable=transient, idempotent=False, sleep=sleep))
    assert once.calls == 1


def test_a_policy_needs_one_attempt_and_no_negative_pause() -> None:
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base=-1.0)
