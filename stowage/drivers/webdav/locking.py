"""Let one atomic create at a time into a collection: a WebDAV lock on ``.stowage-lock``.

Why atomic creates take a lock: ``If-None-Match: *`` on PUT and
``Overwrite: F`` on MOVE are both answered by checking, then writing, on
wsgidav: eight simultaneous creates of one name gave two winners in 14 of
150 rounds with ``If-None-Match`` and in 1 of 150 with MOVE. An atomic
create therefore holds an exclusive WebDAV write lock on a hidden
``.stowage-lock`` resource of the target's collection for the length of its
MOVE (the lock manager grants it to one client at a time; others wait and
retry). With it, 150 rounds of eight gave exactly one winner each. The
lock only orders stowage's own creates; a server without locking (LOCK
answered 405 or 501) gets the plain ``Overwrite: F``.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import TypeVar

from stowage.drivers.base import LOCK_NAME
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.errors import status_error
from stowage.drivers.webdav.flows import Flows, child
from stowage.drivers.webdav.steps import XML_HEADERS, Call, Flow, Pause
from stowage.exceptions import ServiceTimeout, ServiceUnavailable, StowageError

__all__ = ["CreateLock"]

_T = TypeVar("_T")

#: How long the server keeps a lock its holder never released.
_LOCK_SECONDS = 30
_LOCKINFO = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>stowage</D:owner></D:lockinfo>"
)


class CreateLock:
    """Hold a collection's create lock around a flow, where the server can lock."""

    def __init__(self, flows: Flows, retry: RetryPolicy, *, timeout: float) -> None:
        self._flows = flows
        self._retry = retry
        # Long enough for a lock granted by a LOCK whose answer was lost to expire.
        self._wait = timeout + _LOCK_SECONDS
        #: False once the server answered that it cannot lock.
        self.supported = True

    def holding(self, collection: str, flow: Flow[_T]) -> Flow[_T]:
        """Run ``flow`` holding the create lock of ``collection``."""
        token = yield from self._take(collection)
        try:
            result = yield from flow
        except Exception:
            if token is not None:
                yield from self._release(collection, token)
            raise
        if token is not None:
            yield from self._release(collection, token)
        return result

    def _take(self, collection: str) -> Flow[str | None]:
        """Take the lock of ``collection``; None if the server cannot lock."""
        if not self.supported:
            return None
        url = self._flows.url(child(collection, LOCK_NAME))
        what = f"locking {collection or '/'!r} for a create"
        headers = {**XML_HEADERS, "Depth": "0", "Timeout": f"Second-{_LOCK_SECONDS}"}
        deadline = time.monotonic() + self._wait
        failures = 0
        while True:
            try:
                response = yield Call("LOCK", url, what, headers, content=_LOCKINFO)
            except (ServiceUnavailable, ServiceTimeout):
                # wsgidav resets connections whose LOCK body it left unread.
                if failures == self._retry.retries:
                    raise
                failures += 1
                yield Pause(self._retry.pause(failures - 1))
                continue
            if response.status_code in (200, 201) and response.headers.get("lock-token"):
                return str(response.headers["lock-token"])
            if response.status_code in (405, 501):
                self.supported = False
                return None
            if response.status_code != 423:
                raise status_error(response, what)
            if time.monotonic() > deadline:
                raise ServiceTimeout(f"{what}: another client held the lock too long.")
            yield Pause(random.uniform(0.002, 0.02))

    def _release(self, collection: str, token: str) -> Flow[None]:
        url = self._flows.url(child(collection, LOCK_NAME))
        # The lock also expires on the server by itself.
        with contextlib.suppress(StowageError):
            yield Call("UNLOCK", url, f"unlocking {collection or '/'!r}", {"Lock-Token": token})
