"""A small HTTP asset API on loopback: the service of the docs' worked driver example.

The API keeps one library of assets per bearer token, in memory:

- ``PUT /assets/<key>``: store the body (Content-Length or chunked); with
  ``If-None-Match: *`` only if the key is free (412 otherwise). A body that
  does not arrive whole is dropped. Answers 201 with the asset as JSON.
- ``GET /assets/<key>`` with an optional ``Range: bytes=a-b`` (206, or 416
  with ``Content-Range: bytes */size`` when ``a`` is at or past the end);
  ``HEAD`` gives the same headers; ``DELETE`` answers 204, or 404.
- ``GET /assets?prefix=&delimiter=&cursor=``: ``{"assets": [...],
  "prefixes": [...], "cursor": ...}`` in sorted pages of 1,000 entries;
  ``cursor`` is null on the last page.

Run as a program (``python -m tests.servers.asset_api PORT``) it serves on
127.0.0.1:PORT; the ``asset_api`` fixture starts it so and stops it by PID.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.servers._process import ServerProcess, free_port

__all__ = ["AssetAPI", "asset_api", "serve"]

PAGE_SIZE = 1000
_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class _Asset:
    data: bytes
    content_type: str
    modified: dt.datetime
    etag: str

    def describe(self, key: str) -> dict[str, Any]:
        return {
            "key": key,
            "size": len(self.data),
            "modified": self.modified.isoformat(),
            "etag": self.etag,
            "content_type": self.content_type,
        }


_LIBRARIES: dict[str, dict[str, _Asset]] = {}
_LOCK = threading.Lock()


class _IncompleteBody(Exception):
    """The client stopped sending before the end of the body."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the log quiet: one line per request is noise in a test run."""

    # -- plumbing -------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self._reply(status, body, {"Content-Type": "application/json"})

    def _library(self) -> dict[str, _Asset] | None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            self._json(401, {"error": "an API token is required"})
            return None
        with _LOCK:
            return _LIBRARIES.setdefault(token, {})

    def _key(self) -> str | None:
        path = urlsplit(self.path).path
        if not path.startswith("/assets/") or path == "/assets/":
            return None
        return unquote(path.removeprefix("/assets/"))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                line = self.rfile.readline()
                if not line.endswith(b"\n"):
                    raise _IncompleteBody
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(parts)
                chunk = self.rfile.read(size + 2)
                if len(chunk) != size + 2:
                    raise _IncompleteBody
                parts.append(chunk[:size])
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(body) != length:
            raise _IncompleteBody
        return body

    def _asset_headers(self, asset: _Asset) -> dict[str, str]:
        return {
            "Content-Type": asset.content_type,
            "ETag": asset.etag,
            "Last-Modified": format_datetime(asset.modified, usegmt=True),
            "Accept-Ranges": "bytes",
        }

    # -- the API --------------------------------------------------------------------------

    def do_PUT(self) -> None:
        """Store an asset once its whole body has arrived."""
        library, key = self._library(), self._key()
        if library is None:
            return
        try:
            data = self._read_body()
        except (_IncompleteBody, ValueError, OSError):
            self.close_connection = True  # the upload broke: store nothing
            return
        if key is None:
            self._json(400, {"error": "PUT needs /assets/<key>"})
            return
        asset = _Asset(
            data=data,
            content_type=self.headers.get("Content-Type", "application/octet-stream"),
            modified=dt.datetime.now(dt.UTC),
            etag=f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
        )
        with _LOCK:
            if self.headers.get("If-None-Match") == "*" and key in library:
                taken = True
            else:
                taken = False
                library[key] = asset
        if taken:
            self._json(412, {"error": f"{key} already exists"})
        else:
            self._json(201, asset.describe(key))

    def do_GET(self) -> None:
        """Send an asset (whole or a range), or a page of the listing."""
        library = self._library()
        if library is None:
            return
        if urlsplit(self.path).path in ("/assets", "/assets/"):
            self._list(library)
            return
        asset = self._find(library)
        if asset is None:
            return
        headers = self._asset_headers(asset)
        size = len(asset.data)
        wanted = self.headers.get("Range", "")
        if not wanted.startswith("bytes="):
            self._reply(200, asset.data, headers)
            return
        first_text, _, last_text = wanted.removeprefix("bytes=").partition("-")
        first = int(first_text)
        if first >= size:
            self._reply(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
            return
        last = min(int(last_text), size - 1) if last_text else size - 1
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._reply(206, asset.data[first : last + 1], headers)

    def do_HEAD(self) -> None:
        """Send an asset's headers."""
        library = self._library()
        if library is None:
            return
        asset = self._find(library)
        if asset is not None:
            headers = {**self._asset_headers(asset), "Content-Length": str(len(asset.data))}
            self._reply(200, b"", headers)

    def do_DELETE(self) -> None:
        """Forget an asset."""
        library, key = self._library(), self._key()
        if library is None:
            return
        with _LOCK:
            found = key is not None and library.pop(key, None) is not None
        if found:
            self._reply(204)
        else:
            self._json(404, {"error": "no such asset"})

    def _find(self, library: dict[str, _Asset]) -> _Asset | None:
        key = self._key()
        with _LOCK:
            asset = None if key is None else library.get(key)
        if asset is None:
            self._json(404, {"error": "no such asset"})
        return asset

    def _list(self, library: dict[str, _Asset]) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        with _LOCK:
            snapshot = {k: a for k, a in library.items() if k.startswith(prefix)}
        entries: dict[str, dict[str, Any] | None] = {}
        for key, asset in snapshot.items():
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                entries[prefix + rest.split(delimiter, 1)[0] + delimiter] = None
            else:
                entries[key] = asset.describe(key)
        names = [name for name in sorted(entries) if name > query.get("cursor", "")]
        page = names[:PAGE_SIZE]
        self._json(
            200,
            {
                "assets": [entries[n] for n in page if entries[n] is not None],
                "prefixes": [n for n in page if entries[n] is None],
                "cursor": page[-1] if len(names) > PAGE_SIZE else None,
            },
        )


def serve(port: int) -> None:
    """Serve the API on 127.0.0.1:``port`` until the process is stopped."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.serve_forever()


@dataclasses.dataclass
class AssetAPI:
    """The running asset API."""

    process: ServerProcess
    url: str

    def options(self, token: str | None = None) -> dict[str, Any]:
        """Return driver options on a library: a fresh, empty one unless ``token`` is given."""
        return {"api_url": self.url, "token": token or secrets.token_hex(8)}


@pytest.fixture(scope="session")
def asset_api(server_logs: Path) -> Iterator[AssetAPI]:
    """Run the asset API for the whole test run, as a child process stopped by PID."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.servers.asset_api", str(port)]
    process = ServerProcess("asset-api", argv, port=port, log_dir=server_logs, cwd=str(_ROOT))
    process.wait_ready()
    yield AssetAPI(process, f"http://127.0.0.1:{port}/")
    process.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
