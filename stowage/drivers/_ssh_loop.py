"""Run coroutines on one private event loop thread, from threads and from other loops.

asyncssh objects belong to the event loop that made them. The SFTP driver
keeps its connections on this loop: sync callers block on the result, async
callers await it without blocking their own loop, and every caller shares
one connection. The loop starts on first use and again in a forked child,
whose copy of the parent's thread does not run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "loop_thread"]

_T = TypeVar("_T")


class LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="stowage-sftp", daemon=True
        )
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop and return a future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and block until it finishes.

        The task is started by one callback and its end signalled by a lock,
        without the thread-safe future :meth:`submit` chains to it: every
        blocking SFTP call takes this hop, which costs about a fifth less so.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking SFTP call was made from the SFTP event loop itself")
        finished = threading.Lock()
        finished.acquire()
        started: list[asyncio.Task[_T]] = []

        def start() -> None:
            try:
                task = self.loop.create_task(coro)
            except BaseException:
                coro.close()
                finished.release()
                raise
            started.append(task)
            task.add_done_callback(lambda _: finished.release())

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise
        finished.acquire()
        if not started:
            raise RuntimeError("the SFTP event loop could not start the call")
        return started[0].result()

    async def run_async(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and await it from another event loop."""
        return await asyncio.wrap_future(self.submit(coro))


_lock = threading.Lock()
_current: LoopThread | None = None


def loop_thread() -> LoopThread:
    """Return the process's SFTP loop thread, starting it (again after a fork) if needed."""
    global _current
    current = _current
    if current is None or current.pid != os.getpid():
        with _lock:
            if _current is None or _current.pid != os.getpid():
                _current = LoopThread()
            current = _current
    return current
