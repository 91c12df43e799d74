"""Run the SFTP driver's coroutines on one event loop, driven by the thread that waits.

asyncssh objects belong to the event loop that made them, so the SFTP
driver keeps every connection on one loop per process. A blocking call runs
that loop itself while it waits, when no other thread runs it: the request
goes out and its answer comes back on the caller's thread, with no hop
between threads (a hop to a loop thread and back costs more than the
request itself on a fast server). A blocking call that finds the loop run by
another caller hands its coroutine over, and takes the loop over when that
caller lets it go.

A serving thread runs the loop when no caller does: at once when work was
handed over and nobody waits on it (awaited calls from other event loops,
reads ahead, writes in flight), and after :data:`IDLE` seconds without a
caller, so that an idle connection still answers and sends keep-alives. A
blocking call asks the serving thread to stop and runs the loop itself, or
holds it stopped while it reads an answer straight from a pipe
(:meth:`SharedLoop.holding`). The loop starts on first use and again in a
forked child, whose copy of the parent's threads does not run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["IDLE", "SharedLoop", "shared_loop"]

_T = TypeVar("_T")

#: Seconds without a caller running the loop before the serving thread runs it.
IDLE = 0.05


class SharedLoop:
    """An event loop run by whichever thread waits on it, or by its serving thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        #: Held by the thread running the loop.
        self._baton = threading.Lock()
        self._state = threading.Lock()
        #: Callers waiting for the loop to be let go, or for their work to end.
        self._callers = threading.Condition(self._state)
        self._server = threading.Condition(self._state)
        self._waiting = 0
        #: Of those, the callers that will run the loop: the serving thread leaves it to them.
        self._wanting = 0
        #: Coroutines handed over and not finished: the serving thread runs them.
        self._pending = 0
        self._serving = False
        self._closing = False
        self._let_go_at = time.monotonic()
        self._thread = threading.Thread(target=self._serve, name="stowage-sftp", daemon=True)
        self._thread.start()

    # -- calls ------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and block until it finishes, running the loop if free."""
        running = asyncio._get_running_loop()
        if running is self.loop:
            coro.close()
            raise RuntimeError("a blocking SFTP call was made from the SFTP event loop itself")
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("the SFTP event loop is closed")
        if running is None and self._hold():
            try:
                return self._drive(coro)
            finally:
                self._let_go()
        return self.wait(self.submit(coro))

    @contextlib.contextmanager
    def holding(self) -> Iterator[bool]:
        """Hold the loop, stopped, for the block; yield False if that cannot be done now.

        While the block runs no thread runs the loop: the holder may touch
        the loop's objects (its transports, its futures) from its own thread,
        as a blocking request on a connection's pipes does. Another caller
        running the loop, or a call from within a running event loop, yields
        False: the block should then :meth:`run` its work instead.
        """
        if asyncio._get_running_loop() is not None or self.loop.is_closed() or not self._hold():
            yield False
            return
        try:
            yield True
        finally:
            self._let_go()

    def _hold(self) -> bool:
        # Take the baton, from the serving thread if it runs the loop; False when
        # another caller runs it (work is then handed over).
        while True:
            if self._baton.acquire(blocking=False):
                return True
            with self._state:
                if not self._serving:
                    return False
                self._take_from_server()

    def _drive(self, work: Awaitable[_T]) -> _T:
        # run_until_complete() with one turn of the loop less: the task stops the
        # loop as it ends, where run_until_complete() schedules a callback that
        # does. A request answered in a quarter millisecond feels that turn. A stop
        # not asked for (a task left by an interrupted call ending) is outlasted.
        task = self.loop.create_task(self._stopping(work))
        try:
            while not task.done():
                self.loop.run_forever()
        except BaseException:
            if task.done() and not task.cancelled():
                task.exception()  # raised to the caller: not "never retrieved"
            raise
        return task.result()

    async def _stopping(self, work: Awaitable[_T]) -> _T:
        try:
            return await work
        finally:
            self.loop.stop()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Hand ``coro`` to the loop and return a future of its result; nobody need wait."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def start() -> None:
            try:
                task = self.loop.create_task(coro)
            except BaseException as exc:
                coro.close()
                self._settle(future, exc)
                return
            task.add_done_callback(lambda done: self._settle(future, done))

        with self._state:
            self._pending += 1
            self._server.notify()
        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed
            coro.close()
            self._settle(future, RuntimeError("the SFTP event loop is closed"))
        return future

    def wait(self, future: concurrent.futures.Future[_T]) -> _T:
        """Block until ``future`` (from :meth:`submit`) is done, running the loop if free."""
        running = asyncio._get_running_loop()
        if running is self.loop:
            raise RuntimeError("a blocking SFTP call was made from the SFTP event loop itself")
        driving = running is None
        while not future.done():
            if driving and self._baton.acquire(blocking=False):
                try:
                    if not future.done():
                        self._drive(asyncio.wrap_future(future, loop=self.loop))
                finally:
                    self._let_go()
                continue
            with self._state:
                if self._serving and driving:
                    self._take_from_server()
                else:
                    self._await_change(
                        lambda: future.done() or (driving and not self._baton.locked()),
                        wanting=driving,
                    )
        return future.result()

    async def run_async(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and await it from another event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def close(self) -> None:
        """Stop the serving thread and close the loop (its connections must be closed)."""
        with self._state:
            self._closing = True
            self._server.notify()
            if self._serving:
                self.loop.call_soon_threadsafe(self._stop_serving)
        self._thread.join()
        with self._baton:
            self.loop.close()

    # -- the loop's holder ------------------------------------------------------------

    def _settle(
        self, future: concurrent.futures.Future[_T], outcome: asyncio.Task[_T] | BaseException
    ) -> None:
        if future.done():  # cancelled by its holder
            pass
        elif isinstance(outcome, BaseException):
            future.set_exception(outcome)
        elif outcome.cancelled():
            future.cancel()
        elif outcome.exception() is not None:
            future.set_exception(outcome.exception())
        else:
            future.set_result(outcome.result())
        with self._state:
            self._pending -= 1
            self._callers.notify_all()

    def _let_go(self) -> None:
        with self._state:
            self._let_go_at = time.monotonic()
            self._baton.release()
            if self._waiting:
                self._callers.notify_all()
            if self._pending:
                self._server.notify()

    def _take_from_server(self) -> None:
        # With the state lock held: ask the serving thread to stop, and wait until it lets go.
        self.loop.call_soon_threadsafe(self._stop_serving)
        self._await_change(lambda: not self._serving, wanting=True)

    def _await_change(self, ready: Callable[[], bool], *, wanting: bool) -> None:
        # With the state lock held: wait until ``ready()``, woken when the loop is let go
        # or handed-over work ends. A caller ``wanting`` the loop keeps the serving thread
        # from taking it back in between.
        self._waiting += 1
        self._wanting += wanting
        try:
            self._callers.wait_for(ready)
        finally:
            self._waiting -= 1
            self._wanting -= wanting

    def _stop_serving(self) -> None:
        # Runs on the loop, on whichever thread runs it: only the serving thread stops.
        if self._serving:
            self.loop.stop()

    def _serve(self) -> None:
        while True:
            with self._state:
                while True:
                    if self._closing:
                        return
                    wait = IDLE
                    if not self._baton.locked():
                        idle = time.monotonic() - self._let_go_at
                        due = self._pending or idle >= IDLE
                        if due and not self._wanting and self._baton.acquire(False):
                            self._serving = True
                            break
                        wait = IDLE - idle
                    self._server.wait(max(wait, 0.001))
            try:
                self.loop.run_forever()
            finally:
                with self._state:
                    self._serving = False
                self._let_go()


_lock = threading.Lock()
_current: SharedLoop | None = None


def shared_loop() -> SharedLoop:
    """Return the process's SFTP event loop, starting it (again after a fork) if needed."""
    global _current
    current = _current
    if current is None or current.pid != os.getpid():
        with _lock:
            if _current is None or _current.pid != os.getpid():
                _current = SharedLoop()
            current = _current
    return current
