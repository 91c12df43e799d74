"""moto's S3 application served one request at a time, for the same-name race tests.

``moto_server`` serves each request on its own thread, and checks
``If-None-Match: *`` in one step and writes in another: two completions of
multipart uploads to one key arriving together can both pass the check
(joining the parts takes moto a while), where S3 checks and writes at once.
Served one request at a time, moto's conditional writes are atomic as S3's
are, so a race test shows what the client does, not moto's window.

Run as ``python -m tests.servers.moto_serial PORT``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers._process import ServerProcess, free_port
from tests.servers.moto import MotoServer

__all__ = ["moto_serial", "serve", "start_moto_serial"]

ROOT = Path(__file__).resolve().parent.parent.parent


def serve(port: int) -> None:
    """Serve moto's S3 application on 127.0.0.1:``port``, one request at a time."""
    os.environ["MOTO_PORT"] = str(port)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=False)


def start_moto_serial(log_dir: Path) -> MotoServer:
    """Start the server in a child process and wait until it answers."""
    port = free_port()
    process = ServerProcess(
        "moto-serial",
        [sys.executable, "-m", "tests.servers.moto_serial", str(port)],
        port=port,
        log_dir=log_dir,
        cwd=str(ROOT),
    )
    process.wait_ready()
    return MotoServer(process, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def moto_serial(server_logs: Path) -> Iterator[MotoServer]:
    """Run one single-threaded moto server for the whole test session."""
    server = start_moto_serial(server_logs)
    yield server
    server.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
