"""A minimal S3 endpoint that answers every request after a fixed delay.

The async and sync benchmarks ask how many requests a client keeps in
flight, not how fast a server stores them. moto answers one request at a
time in Python, a few milliseconds of its own CPU each, so against moto the
server is the limit whatever the client does. AWS S3 answers many requests
at once, each a network round trip away. This server plays that part: it
keeps connections open, holds each response for ``latency`` seconds without
blocking the others, and honours just what the benchmarks send: PUT (with
``If-None-Match: *`` refused for a key it holds, and the body's MD5 as its
ETag), GET and HEAD, DELETE (one key or a batch) and ListObjectsV2 (pages of
1,000 keys). It keeps every object's bytes, in memory.

Run as ``python -m bench.latency_s3 PORT LATENCY``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from bench._servers import start_s3_module

if TYPE_CHECKING:
    from tests.servers.moto import MotoServer

__all__ = ["allow_open_files", "serve", "start"]

_PRECONDITION_FAILED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>'
    b"<Message>At least one of the pre-conditions you specified did not hold</Message></Error>"
)


class _Endpoint:
    """The objects written so far (bytes and ETag by path), and how to answer a request."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.objects: dict[str, tuple[bytes, str]] = {}

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        path, _, query = target.partition("?")
        key = unquote(path)
        if method == "POST" and query == "delete":
            deleted = []
            for name in re.findall(rb"<Key>(.*?)</Key>", body):
                self.objects.pop(f"{key}/{name.decode()}", None)
                deleted.append(b"<Deleted><Key>" + name + b"</Key></Deleted>")
            result = b"<DeleteResult>" + b"".join(deleted) + b"</DeleteResult>"
            return _response(200, {"Content-Type": "application/xml"}, result)
        if method == "GET" and "list-type=2" in query:
            return self._list(key.strip("/"), dict(parse_qsl(query)))
        if method == "PUT":
            if headers.get("if-none-match") == "*" and key in self.objects:
                return _response(412, {"Content-Type": "application/xml"}, _PRECONDITION_FAILED)
            etag = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
            self.objects[key] = (body, etag)
            return _response(200, {"ETag": etag})
        if method == "DELETE":
            self.objects.pop(key, None)
            return _response(204)
        if method in ("GET", "HEAD"):
            if key not in self.objects:
                return _response(404)
            data, etag = self.objects[key]
            fields = {"Content-Length": str(len(data)), "ETag": etag}
            return _response(200, fields, data if method == "GET" else b"", head=method == "HEAD")
        return _response(501)

    def _list(self, bucket: str, query: dict[str, str]) -> bytes:
        """Answer a ListObjectsV2 of ``bucket``: 1,000 keys a page, after the token's key."""
        prefix = query.get("prefix", "")
        after = query.get("continuation-token") or query.get("start-after", "")
        start = f"/{bucket}/"
        names = sorted(
            path[len(start) :]
            for path in self.objects
            if path.startswith(start + prefix) and path[len(start) :] > after
        )
        page, truncated = names[:1000], len(names) > 1000
        contents = "".join(
            f"<Contents><Key>{escape(name)}</Key><Size>{len(self.objects[start + name][0])}</Size>"
            f"<ETag>{escape(self.objects[start + name][1])}</ETag>"
            "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for name in page
        )
        token = (
            f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>"
            if truncated
            else ""
        )
        result = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>{str(truncated).lower()}</IsTruncated>{token}{contents}"
            "</ListBucketResult>"
        )
        return _response(200, {"Content-Type": "application/xml"}, result.encode())

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {}
                for field in filter(None, fields):
                    name, _, value = field.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await _read_body(reader, headers)
                await asyncio.sleep(self.latency)
                writer.write(self.answer(method, target, headers, body))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            length = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append((await reader.readexactly(length + 2))[:length])
            if not length:
                return b"".join(chunks)
    return await reader.readexactly(int(headers.get("content-length", "0")))


def _response(
    status: int, headers: dict[str, str] | None = None, body: bytes = b"", *, head: bool = False
) -> bytes:
    """Return an answer; ``head`` keeps the given Content-Length over an empty body."""
    reasons = {200: "OK", 204: "No Content", 404: "Not Found", 412: "Precondition Failed"}
    lines = [f"HTTP/1.1 {status} {reasons.get(status, 'Not Implemented')}"]
    fields = {**({} if head else {"Content-Length": str(len(body))}), **(headers or {})}
    lines += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def allow_open_files(wanted: int = 8192) -> None:
    """Raise this process's open-file limit towards ``wanted`` (one socket per connection)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(port: int, latency: float) -> None:
    """Serve on 127.0.0.1:``port`` until terminated, answering after ``latency`` seconds."""
    allow_open_files()

    async def main() -> None:
        endpoint = _Endpoint(latency)
        server = await asyncio.start_server(endpoint.serve, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start(log_dir: Path, latency: float) -> MotoServer:
    """Start the server in a child process; return a server object the S3 options come from."""
    return start_s3_module("latency_s3", log_dir, str(latency))


if __name__ == "__main__":
    serve(int(sys.argv[1]), float(sys.argv[2]))
