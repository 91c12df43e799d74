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
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_POLICY", "RetryPolicy"]

_T = TypeVar("_T")
_Checks = tuple[
    Callable[[BaseException], bool], bool | Callable[[], bool], Callable[[BaseException], bool]
]

#: Retries after the first attempt, the default of every driver's ``max_retries``.
DEFAULT_MAX_RETRIES = 3


def _never(exc: BaseException) -> bool:
    return False


def _holds(flag: bool | Callable[[], bool]) -> bool:
    return flag() if callable(flag) else flag


@dataclass(frozen=True, slots=True)
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

    def _next_pause(
        self,
        attempt: int,
        started: float,
        clock: Callable[[], float],
    ) -> float | None:
        """Return the pause before another try, or None when the policy is spent."""
        if attempt + 1 >= self.attempts:
            return None
        pause = self.pause(attempt)
        if self.deadline is not None and clock() + pause - started > self.deadline:
            return None
        return pause

    def _after_failure(
        self,
        exc: BaseException,
        attempt: int,
        started: float,
        clock: Callable[[], float],
        checks: _Checks,
    ) -> float | None:
        retryable, idempotent, unsent = checks
        if not retryable(exc):
            return None
        if not unsent(exc) and not _holds(idempotent):
            return None
        return self._next_pause(attempt, started, clock)

    def run(
        self,
        operation: Callable[[], _T],
        *,
        retryable: Callable[[BaseException], bool],
        idempotent: bool | Callable[[], bool] = True,
        unsent: Callable[[BaseException], bool] = _never,
        retry_result: Callable[[_T], bool] | None = None,
        before_retry: Callable[[], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> _T:
        """Call ``operation`` until it succeeds or the policy says to stop.

        A failure is tried again when ``retryable`` accepts it and either the
        operation is ``idempotent`` (a bool, or a callable asked after the
        failure) or ``unsent`` says nothing that could take effect was sent.
        A result that ``retry_result`` rejects is tried again, when the
        operation is idempotent, and returned as it is once the policy is
        spent. ``before_retry`` runs after each pause (to rewind a body, say).
        The last failure propagates.
        """
        checks = (retryable, idempotent, unsent)
        started, attempt = clock(), 0
        while True:
            try:
                result = operation()
            except Exception as exc:
                pause = self._after_failure(exc, attempt, started, clock, checks)
                if pause is None:
                    raise
            else:
                retry = retry_result is not None and retry_result(result) and _holds(idempotent)
                pause = self._next_pause(attempt, started, clock) if retry else None
                if pause is None:
                    return result
            sleep(pause)
            if before_retry is not None:
                before_retry()
            attempt += 1

    async def arun(
        self,
        operation: Callable[[], Awaitable[_T]],
        *,
        retryable: Callable[[BaseException], bool],
        idempotent: bool | Callable[[], bool] = True,
        unsent: Callable[[BaseException], bool] = _never,
        retry_result: Callable[[_T], bool] | None = None,
        before_retry: Callable[[], None] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> _T:
        """Await ``operation()`` until it succeeds or the policy says to stop, as :meth:`run`."""
        checks = (retryable, idempotent, unsent)
        started, attempt = clock(), 0
        while True:
            try:
                result = await operation()
            except Exception as exc:
                pause = self._after_failure(exc, attempt, started, clock, checks)
                if pause is None:
                    raise
            else:
                retry = retry_result is not None and retry_result(result) and _holds(idempotent)
                pause = self._next_pause(attempt, started, clock) if retry else None
                if pause is None:
                    return result
            await sleep(pause)
            if before_retry is not None:
                before_retry()
            attempt += 1


#: The policy of every network driver left at its defaults.
DEFAULT_POLICY = RetryPolicy()
