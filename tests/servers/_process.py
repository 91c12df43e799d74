"""Start a test server as a child process on loopback and stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ServerProcess", "free_port", "require_executable", "wait_for_port"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections, or fail clearly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def require_executable(name: str, hint: str) -> str:
    """Return the path of ``name`` or fail with how to install it."""
    # The virtualenv running the tests first: another Python may have its own copy.
    beside = os.path.join(os.path.dirname(sys.executable), name)
    path = beside if os.access(beside, os.X_OK) else shutil.which(name)
    if path is None:
        raise RuntimeError(f"test server program {name!r} is missing: {hint}")
    return path


class ServerProcess:
    """A server child process, its log file, and a stop that kills it by PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the port; on failure, stop the server and show its log."""
        try:
            wait_for_port(self.port, timeout=timeout, process=self.process)
        except RuntimeError as exc:
            self.stop()
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not start: {exc}\n--- log ---\n{log}") from None

    def stop(self) -> None:
        """Terminate the server's process group by PID, then kill it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()
