"""Write through a hidden name, then MOVE into place: uploads and server-side copies.

Why every upload is staged: a plain PUT writes straight into the target on
common servers (wsgidav's filesystem provider opens the target and writes
as the body arrives). A body that breaks mid-stream leaves a partial file,
and a PUT over an existing file has already truncated it. So ``put``
streams to a hidden temporary name (``.stowage-tmp-…``) in the target's
collection and then MOVEs it into place: ``Overwrite: T`` to replace,
``Overwrite: F`` for an atomic create (412 means the name is taken), under
the collection's create lock (:mod:`stowage.drivers.webdav.locking`). A
failed upload deletes its temporary file; listings never show either kind
of hidden name (``.stowage-``). A copy is a COPY on the server to a
temporary name, then the same MOVE.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Mapping

import httpx

from stowage.drivers.base import TEMP_PREFIX, ObjectInfo
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.destinations import DestinationCheck
from stowage.drivers.webdav.errors import expect
from stowage.drivers.webdav.flows import Flows, child, parent
from stowage.drivers.webdav.locking import CreateLock
from stowage.drivers.webdav.steps import Body, Call, Flow, Pause
from stowage.exceptions import (
    AlreadyExists,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)

__all__ = ["StagedWrites"]


class StagedWrites:
    """Build the flows of uploads and copies, each staged under a hidden name."""

    def __init__(self, flows: Flows, lock: CreateLock, retry: RetryPolicy) -> None:
        self._flows = flows
        self._lock = lock
        self._retry = retry
        self._destinations = DestinationCheck(flows)

    def put(
        self, key: str, body: Body, content_type: str | None, *, if_absent: bool
    ) -> Flow[ObjectInfo]:
        """Stream ``body`` to a hidden name beside ``key``, then MOVE it to ``key``."""
        what = f"writing {key!r}"
        collection = parent(key)
        temp = yield from self._stage_in(key)
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            response = yield Call("PUT", self._flows.url(temp), what, headers, body=body)
            if response.status_code == 409:
                yield from self._refuse_file_in_the_way(collection)
            expect(response, what)
            yield from self._place(temp, key, if_absent=if_absent)
        except Exception:
            yield from self._flows.discard(temp)
            raise
        return ObjectInfo(
            key=key,
            size=body.count,
            modified=dt.datetime.now(dt.UTC),
            content_type=content_type,
        )

    def copy(self, src: str, dst: str) -> Flow[ObjectInfo]:
        """COPY ``src`` on the server to a hidden name beside ``dst``, then MOVE it over ``dst``."""
        what = f"copying {src!r}"
        temp = yield from self._stage_in(dst)
        headers = {"Destination": self._flows.url(temp), "Overwrite": "T", "Depth": "0"}
        try:
            response = yield Call("COPY", self._flows.url(src), what, headers)
            expect(response, what, 201, 204)
            yield from self._place(temp, dst, if_absent=False)
        except Exception:
            yield from self._flows.discard(temp)
            raise
        return (yield from self._flows.head(dst))

    def _stage_in(self, key: str) -> Flow[str]:
        """Make the collection of ``key`` if it is missing; return a fresh hidden name inside it.

        Refuses ``key`` first if a MOVE to it would land under another name.
        """
        yield from self._destinations.check(key)
        collection = parent(key)
        if collection:
            yield from self._flows.make_collections(collection)
        return child(collection, f"{TEMP_PREFIX}{secrets.token_hex(16)}")

    def _place(self, temp: str, key: str, *, if_absent: bool) -> Flow[None]:
        """MOVE the staged ``temp`` to ``key`` (only if ``key`` is free with ``if_absent``)."""
        if if_absent:
            yield from self._create(temp, key)
        else:
            yield from self._replace(temp, key)

    def _replace(self, temp: str, key: str) -> Flow[None]:
        what = f"writing {key!r}"
        # A MOVE that overwrites deletes a collection in the way, with all it holds.
        resource = yield from self._flows.stat(key)
        if resource is not None and resource.collection:
            raise ServiceError(f"Cannot write {key!r}: a directory of that name is in the way.")
        headers = {"Destination": self._flows.url(key), "Overwrite": "T"}
        for _attempt in range(3):
            moved = yield from self._move(temp, what, headers)
            if moved is None:
                return
            response = moved
            # wsgidav answers concurrent replaces of one name with 207 or 500; retry.
            if response.status_code != 207 and response.status_code < 500:
                break
            yield Pause(random.uniform(0.01, 0.05))
        expect(response, what, 201, 204)

    def _create(self, temp: str, key: str) -> Flow[None]:
        what = f"writing {key!r}"
        headers = {"Destination": self._flows.url(key), "Overwrite": "F"}
        moved = yield from self._lock.holding(parent(key), self._move(temp, what, headers))
        if moved is None:
            return
        if moved.status_code == 412:
            raise AlreadyExists(f"{key!r} already exists.")
        expect(moved, what, 201, 204)

    def _move(
        self, temp: str, what: str, headers: Mapping[str, str]
    ) -> Flow[httpx.Response | None]:
        """MOVE ``temp``, again after a lost connection; None when an unanswered MOVE did it.

        Only this upload knows the temporary name: once it is gone, the MOVE
        whose answer was lost has moved it.
        """
        for attempt in range(self._retry.attempts):
            try:
                response: httpx.Response = yield Call("MOVE", self._flows.url(temp), what, headers)
            except (ServiceUnavailable, ServiceTimeout):
                if attempt == self._retry.retries:
                    raise
                yield Pause(self._retry.pause(attempt))
                continue
            if attempt and response.status_code == 404:
                return None
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _refuse_file_in_the_way(self, collection: str) -> Flow[None]:
        """Raise if ``collection`` or a parent of it is a file (MKCOL says 405 for those too)."""
        path = collection
        while path:
            resource = yield from self._flows.stat(path)
            if resource is not None and not resource.collection:
                raise ServiceError(
                    f"Cannot create the directory {path!r}: a file of that name is in "
                    "the way, and it is not a directory."
                )
            path = parent(path)
