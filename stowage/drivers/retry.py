"""Retry a failed request the same way in every network driver.

One :class:`RetryPolicy` says how often and how long to try: a number of
attempts, an exponential pause with a cap and full jitter (a random pause
between zero and the capped delay, so clients that failed together do not
come back together), and an optional overall deadline. :meth:`RetryPolicy.run`
and :meth:`RetryPolicy.arun` run an operation under it, sync and async.

An operation is run again only when the driver's ``retryable`` predicate
accepts the failure *and* running it twice cannot do anything twice: either
the operation is idempotent, or the failure happened before anything that
could take effect was sent (``unsent``). Drivers whose retries also resume
a cut read or pause inside a request flow use :meth:`RetryPolicy.pause` and
:attr:`RetryPolicy.retries` for the counting and the pauses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from stowage.exceptions import ServiceTimeout, ServiceUnavailable
from stowage.records import record

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_POLICY", "RetryPolicy", "transient"]

_T = TypeVar("_T")

#: Retries after the first attempt, the default of every driver's ``max_retries``.
DEFAULT_MAX_RETRIES = 3


def _never(exc: BaseException) -> bool:
    return False


def transient(exc: BaseException) -> bool:
    """Tell whether a translated failure may pass: the service unavailable or too slow."""
    return isinstance(exc, (ServiceUnavailable, ServiceTimeout))


def _holds(flag: bool | Callable[[], bool]) -> bool:
    return flag() if callable(flag) else flag


@record(slots=True)
class RetryPolicy:
    """Say how often to try a request and how long to pause between tries."""

    #: Tries in all, the first one included (``max_retries + 1``).
    attempts: int = DEFAULT_MAX_RETRIES + 1
    #: Pause ceiling before the first retry, in seconds; it doubles each retry.
    base: float = 0.05
    #: Largest pause ceiling, in seconds.
    cap: float = 2.0
    #: Draw each pause at random between zero and its ceiling (full jitter).
    jitter: bool = True
    #: Seconds after the first try past which no retry starts (None: no limit).
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("A retry policy needs at least one attempt.")
        if self.base < 0 or self.cap < 0:
            raise ValueError("Retry pauses cannot be negative.")

    @classmethod
    def for_retries(cls, max_retries: int, *, deadline: float | None = None) -> RetryPolicy:
        """Return the default policy with ``max_retries`` retries after the first try."""
        return cls(attempts=max_retries + 1, deadline=deadline)

    @property
    def retries(self) -> int:
        """Return how many times a failed try may be repeated."""
        return self.attempts - 1

    def ceiling(self, attempt: int) -> float:
        """Return the longest pause after failed try ``attempt`` (from 0)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 64))

    def pause(self, attempt: int) -> float:
        """Return the pause after failed try ``attempt`` (from 0), jittered if configured."""
        ceiling = self.ceiling(attempt)
        return random.uniform(0.0, ceiling) if self.jitter else ceiling

    def run(
        self,
        operation: Callable[[], _T],
        *,
        retryable: Callable[[BaseException], bool] = transient,
        idempotent: bool | Callable[[], bool] = True,
        unsent: Callable[[BaseException], bool] = _never,
        retry_result: Callable[[_T], bool] | None = None,
        before_retry: Callable[[], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> _T:
        """Call ``operation`` until it succeeds or the policy says to stop.

        A failure is tried again when ``retryable`` (by default
        :func:`transient`) accepts it and either the
        operation is ``idempotent`` (a bool, or a callable asked after the
        failure) or ``unsent`` says nothing that could take effect was sent.
        A result that ``retry_result`` rejects is tried again, when the
        operation is idempotent, and returned as it is once the policy is
        spent. ``before_retry`` runs after each pause (to rewind a body, say).
        The last failure propagates.
        """
        tries = _Tries(self, retryable, idempotent, unsent, retry_result, clock)
        while True:
            try:
                result = operation()
            except Exception as exc:
                sleep(tries.pause_after_failure(exc))
            else:
                if (pause := tries.pause_after(result)) is None:
                    return result
                sleep(pause)
            if before_retry is not None:
                before_retry()

    async def arun(
        self,
        operation: Callable[[], Awaitable[_T]],
        *,
        retryable: Callable[[BaseException], bool] = transient,
        idempotent: bool | Callable[[], bool] = True,
        unsent: Callable[[BaseException], bool] = _never,
        retry_result: Callable[[_T], bool] | None = None,
        before_retry: Callable[[], None] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> _T:
        """Await ``operation()`` until it succeeds or the policy says to stop, as :meth:`run`."""
        tries = _Tries(self, retryable, idempotent, unsent, retry_result, clock)
        while True:
            try:
                result = await operation()
            except Exception as exc:
                await sleep(tries.pause_after_failure(exc))
            else:
                if (pause := tries.pause_after(result)) is None:
                    return result
                await sleep(pause)
            if before_retry is not None:
                before_retry()


class _Tries:
    """Count the tries of one run and say, after each, whether and when to go again."""

    def __init__(
        self,
        policy: RetryPolicy,
        retryable: Callable[[BaseException], bool],
        idempotent: bool | Callable[[], bool],
        unsent: Callable[[BaseException], bool],
        retry_result: Callable[[Any], bool] | None,
        clock: Callable[[], float],
    ) -> None:
        self.policy = policy
        self.retryable = retryable
        self.idempotent = idempotent
        self.unsent = unsent
        self.retry_result = retry_result
        self.clock = clock
        self.started = clock()
        self.attempt = 0

    def _next(self) -> float | None:
        """Return the pause before another try, or None when the policy is spent."""
        policy = self.policy
        if self.attempt + 1 >= policy.attempts:
            return None
        pause = policy.pause(self.attempt)
        if policy.deadline is not None and self.clock() + pause - self.started > policy.deadline:
            return None
        self.attempt += 1
        return pause

    def pause_after_failure(self, exc: Exception) -> float:
        """Return the pause before trying again after ``exc``, or raise ``exc``."""
        if self.retryable(exc) and (self.unsent(exc) or _holds(self.idempotent)):
            pause = self._next()
            if pause is not None:
                return pause
        raise exc

    def pause_after(self, result: object) -> float | None:
        """Return the pause before trying again after ``result``, or None to return it."""
        if self.retry_result is None or not self.retry_result(result):
            return None
        return self._next() if _holds(self.idempotent) else None


#: The policy of every network driver left at its defaults.
DEFAULT_POLICY = RetryPolicy()
