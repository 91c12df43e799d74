"""Drive the WebDAV flows: a sync runner over ``httpx.Client``, an async one over ``AsyncClient``.

A runner sends each :class:`~stowage.drivers.webdav.steps.Call` a flow
yields, under the driver's :class:`~stowage.drivers.retry.RetryPolicy`,
and hands the flow the response, or the failure translated into stowage's
exceptions. A request is sent again after a connection error, a timeout or
a 500/502/503/504 answer only when that cannot do anything twice: its
method changes nothing, or it is an upload whose source can rewind (to a
fresh temporary name). Downloads stream through a
:class:`~stowage.drivers.webdav.reads.Reading`, which the runners resume
alike. The two runners mirror each other line for line; everything an
operation decides is in its flow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar

import httpx

from stowage.drivers.base import AsyncDownload, Download
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.connection import Connection
from stowage.drivers.webdav.errors import ERRORS
from stowage.drivers.webdav.reads import Reading
from stowage.drivers.webdav.steps import CHUNK, Call, Flow, Pause

__all__ = ["AsyncRunner", "SyncRunner"]

_T = TypeVar("_T")

#: Methods a retry cannot make do anything twice (MKCOL and DELETE answer 405/404 instead).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "DELETE", "MKCOL"})
#: Answers worth retrying: the server or a proxy failed, not the request.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


def _transport_failed(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError)


def _server_failed(response: httpx.Response) -> bool:
    return response.status_code in _RETRY_STATUSES


def _repeatable(step: Call) -> bool:
    """Tell whether ``step`` may be sent again after a failure.

    An upload goes to a fresh temporary name, so it may be sent again when
    its source can rewind; other methods that change something are retried
    by their flows.
    """
    if step.body is not None:
        return step.body.start is not None
    return step.method in _IDEMPOTENT


def _settle(step: Call, response: httpx.Response) -> Literal["stream", "read", "drop"]:
    """Say what becomes of the body of ``response``, the answer to ``step``.

    A download's 200 or 206 streams to its flow. Any other answer to a
    download is used for its status alone, and so is an error answering an
    upload, which the server may send before it has read the whole upload:
    wsgidav on cheroot then leaves a chunked body unread on the connection,
    and takes it for the start of the next request there (400 Bad Request).
    Such answers are dropped: closed unread, which closes their connection
    instead of handing it back to the pool. Any other answer is read whole.
    """
    if step.download:
        return "stream" if response.status_code in (200, 206) else "drop"
    if step.body is not None and not response.is_success:
        return "drop"
    return "read"


class _Runner:
    """What both runners share: the connection, the retry policy, the error translation."""

    def __init__(self, connection: Connection, retry: RetryPolicy) -> None:
        self.connection = connection
        self.retry = retry

    def _failure(self, exc: Exception, step: Call | Pause) -> Exception:
        """Return what the flow receives for ``exc``: httpx's errors translated."""
        if isinstance(exc, httpx.HTTPError | httpx.StreamError) and isinstance(step, Call):
            return ERRORS.convert(exc, step.what, root=self.connection.root)
        return exc  # the source stream's own error, or a stowage one


class SyncRunner(_Runner):
    """Run flows on the shared ``httpx.Client``."""

    def run(self, flow: Flow[_T]) -> _T:
        """Drive ``flow`` to its end and return its result."""
        client = self.connection.client
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = error = None
            try:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                else:
                    reply = self._request(client, step)
            except Exception as exc:
                error = self._failure(exc, step)

    def download(self, flow: Flow[Reading]) -> Download:
        """Open a read with ``flow`` and stream its body."""
        reading = self.run(flow)

        def close() -> None:
            if reading.response is not None:
                reading.response.close()

        return Download(reading.info, self._stream(reading, close), close)

    def _stream(self, reading: Reading, close: Callable[[], None]) -> Iterator[bytes]:
        try:
            response = reading.response
            while response is not None:
                try:
                    for chunk in response.iter_bytes(CHUNK):
                        if part := reading.take(chunk):
                            yield part
                        if reading.done:
                            return
                    return
                except httpx.HTTPError as exc:
                    pause = reading.cut(exc)
                response.close()
                time.sleep(pause)
                self.run(reading.resume())
                response = reading.response
        finally:
            close()

    def _request(self, client: httpx.Client, step: Call) -> httpx.Response:
        return self.retry.run(
            lambda: self._send(client, step),
            retryable=_transport_failed,
            idempotent=_repeatable(step),
            retry_result=_server_failed,
            before_retry=None if step.body is None else step.body.rewind,
        )

    def _send(self, client: httpx.Client, step: Call) -> httpx.Response:
        content: Any = step.content
        if step.body is not None:
            if not self.connection.primed:
                self.connection.prime(client.request("OPTIONS", self.connection.root), step.what)
            content = step.body.chunks()
        request = client.build_request(step.method, step.url, headers=step.headers, content=content)
        response = client.send(request, stream=True)
        settle = _settle(step, response)
        if settle == "read":
            response.read()
        elif settle == "drop":
            response.close()
        return response


class AsyncRunner(_Runner):
    """Run flows each on an ``httpx.AsyncClient`` of its own."""

    async def run(self, flow: Flow[_T]) -> _T:
        """Drive ``flow`` to its end and return its result."""
        async with self.connection.async_client() as client:
            return await self._run_on(client, flow)

    async def download(self, flow: Flow[Reading]) -> AsyncDownload:
        """Open a read with ``flow`` and stream its body; the client lives as long."""
        client = self.connection.async_client()
        try:
            reading = await self._run_on(client, flow)
        except BaseException:
            await client.aclose()
            raise
        if reading.response is None:
            await client.aclose()  # nothing to stream: the client is done now

        async def close() -> None:
            try:
                if reading.response is not None:
                    await reading.response.aclose()
            finally:
                await client.aclose()

        return AsyncDownload(reading.info, self._stream(client, reading, close), close)

    async def _stream(
        self, client: httpx.AsyncClient, reading: Reading, close: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[bytes]:
        try:
            response = reading.response
            while response is not None:
                try:
                    async for chunk in response.aiter_bytes(CHUNK):
                        if part := reading.take(chunk):
                            yield part
                        if reading.done:
                            return
                    return
                except httpx.HTTPError as exc:
                    pause = reading.cut(exc)
                await response.aclose()
                await asyncio.sleep(pause)
                await self._run_on(client, reading.resume())
                response = reading.response
        finally:
            await close()

    async def _run_on(self, client: httpx.AsyncClient, flow: Flow[_T]) -> _T:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            reply = error = None
            try:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                else:
                    reply = await self._request(client, step)
            except Exception as exc:
                error = self._failure(exc, step)

    async def _request(self, client: httpx.AsyncClient, step: Call) -> httpx.Response:
        return await self.retry.arun(
            lambda: self._send(client, step),
            retryable=_transport_failed,
            idempotent=_repeatable(step),
            retry_result=_server_failed,
            before_retry=None if step.body is None else step.body.rewind,
        )

    async def _send(self, client: httpx.AsyncClient, step: Call) -> httpx.Response:
        content: Any = step.content
        if step.body is not None:
            if not self.connection.primed:
                options = await client.request("OPTIONS", self.connection.root)
                self.connection.prime(options, step.what)
            content = step.body.achunks()
        request = client.build_request(step.method, step.url, headers=step.headers, content=content)
        response = await client.send(request, stream=True)
        settle = _settle(step, response)
        if settle == "read":
            await response.aread()
        elif settle == "drop":
            await response.aclose()
        return response
