"""Write an adapter operation once, as the driver calls it makes; run it sync or async.

An operation is a generator that yields :class:`Call` s (a driver method and
its arguments) and receives each call's result at the ``yield``, or has the
call's exception raised there. :func:`run` makes the calls on the driver's
sync methods; :func:`arun` awaits their async twins (``a`` + the name), or
runs the sync method on a worker thread where the driver has no twin
(``adopt``, local file work). ``Storage.save`` and ``Storage.asave`` are so one
algorithm that cannot drift; the work between calls (choosing names, planning
the body) is plain code, the same for both.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, TypeVar

from stowage.drivers.base import in_thread
from stowage.records import record

__all__ = ["Call", "Steps", "arun", "call", "run"]

_T = TypeVar("_T")


@record(slots=True)
class Call:
    """One driver call an operation needs: the sync method's name and its arguments."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


#: An operation: yields calls, receives their results, returns its own.
Steps = Generator[Call, Any, _T]


def call(method: str, /, *args: Any, **kwargs: Any) -> Call:
    """Return the call of the driver's ``method`` with these arguments."""
    return Call(method, args, kwargs)


def run(steps: Steps[_T], driver: Any) -> _T:
    """Run ``steps`` on the driver's sync methods and return the operation's result."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            result, error = getattr(driver, step.method)(*step.args, **step.kwargs), None
        except Exception as exc:  # handed to the operation, which may catch it
            result, error = None, exc


async def arun(steps: Steps[_T], driver: Any) -> _T:
    """Run ``steps`` on the driver's async twins (a worker thread where it has none)."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        twin = getattr(driver, "a" + step.method, None)
        try:
            if twin is not None:
                result = await twin(*step.args, **step.kwargs)
            else:
                method = getattr(driver, step.method)
                result = await in_thread(method, *step.args, **step.kwargs)
            error = None
        except Exception as exc:  # handed to the operation, which may catch it
            result, error = None, exc
