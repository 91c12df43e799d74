"""Start a benchmark's own S3 endpoint (a module of this package) as a child process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.servers.moto import MotoServer

__all__ = ["start_s3_module"]


def start_s3_module(module: str, log_dir: Path, *args: str) -> MotoServer:
    """Run ``python -m bench.<module> PORT *args`` on a free port; return it as an S3 server.

    The server is stopped by its PID (``stop()``), like the test servers.
    """
    from tests.servers._process import ServerProcess, free_port
    from tests.servers.moto import MotoServer

    port = free_port()
    process = ServerProcess(
        module.replace("_", "-"),
        [sys.executable, "-m", f"bench.{module}", str(port), *args],
        port=port,
        log_dir=log_dir,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    process.wait_ready()
    return MotoServer(process, f"http://127.0.0.1:{port}")
