"""pyftpdlib FTP and FTPS servers on loopback, for the FTP driver's tests and benchmark.

Each server is a child process (``python -m tests.servers.ftpd ...``) bound to
127.0.0.1 on a free port, with one user whose home is a directory of the
test session; tests work in a fresh subdirectory of it. Variants:

- plain FTP, and FTPS with a self-signed certificate generated here
  (``tls_control_required`` and ``tls_data_required``: nothing goes in clear);
- "legacy" servers without MLSD/MLST whose LIST speaks Unix ``ls``, DOS
  (IIS) or bare names, and whose RNTO refuses to replace a file, as Windows
  servers do;
- a server with a small disk: writes past its quota fail with ENOSPC and the
  transfer is answered ``452``, as proftpd and pure-ftpd answer;
- a server whose data connections fail on demand (:meth:`FTPServer.fault_data`):
  a download cut at a byte of the file, with a clean close answered ``226``
  (as a client sees a connection cut by the network after the server handed
  everything to its kernel) or a reset answered ``426``; an upload cut after
  some bytes the same ways; or a transfer that stops moving for a while.
  The fault is read from a small JSON file beside the server's log, once per
  transfer; each fault that fires is appended to a second file.

Set ``FTPD_DEBUG=1`` to log every command and reply to the server's log file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import ipaddress
import json
import logging
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port

__all__ = [
    "PASSWORD",
    "USER",
    "FTPServer",
    "ftpd",
    "ftpd_faulty",
    "ftpd_full",
    "ftpd_legacy",
    "ftpd_tls",
    "make_certificate",
    "start_ftpd",
]

USER = "stowage"
#: A fresh password per run, so tests can look for it anywhere it must not be.
PASSWORD = f"pw-{secrets.token_hex(12)}"
_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class FTPServer:
    """A running pyftpdlib server and how to reach it."""

    process: ServerProcess
    port: int
    home: Path
    log_dir: Path
    flags: list[str] = field(default_factory=list)
    cert: Path | None = None
    #: The file telling a faulty server what to do to its data connections.
    fault_file: Path | None = None

    def options(self, root: str | None = None, **extra: Any) -> dict[str, Any]:
        """Return driver OPTIONS for a fresh (or the given) directory of the home."""
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "password": PASSWORD,
            "root_path": root or f"/t-{secrets.token_hex(6)}",
            "timeout": 20,
        }
        if self.cert is not None:
            options.update(tls=True, verify=str(self.cert))
        options.update(extra)
        return options

    def fault_data(
        self, command: str, how: str, at: int, *, every: bool = False, seconds: float = 0.0
    ) -> None:
        """Make the next ``command`` transfer (``RETR`` or ``STOR``) fail on its data connection.

        ``how`` is ``truncate`` (a clean close; a download is answered 226 as
        if complete), ``reset`` (a TCP reset, answered 426) or ``stall`` (no
        byte moves for ``seconds``, then the transfer goes on). A download
        fails when it reaches byte ``at`` of the file, so a transfer resumed
        there fails at once; an upload after ``at`` bytes. With ``every``
        each such transfer fails, else only the next one.
        """
        assert self.fault_file is not None, "start the server with data_faults=True"
        spec = {"command": command, "how": how, "at": at, "every": every, "seconds": seconds}
        staged = self.fault_file.with_suffix(".tmp")
        staged.write_text(json.dumps(spec))
        os.replace(staged, self.fault_file)

    def clear_data_fault(self) -> None:
        """Stop failing data connections and forget the faults that fired."""
        assert self.fault_file is not None, "start the server with data_faults=True"
        self.fault_file.unlink(missing_ok=True)
        _fired_file(self.fault_file).unlink(missing_ok=True)

    def data_faults_fired(self) -> list[str]:
        """Return the faults that hit a data connection (``"RETR truncate 50000"``, ...)."""
        assert self.fault_file is not None, "start the server with data_faults=True"
        fired = _fired_file(self.fault_file)
        return fired.read_text().splitlines() if fired.exists() else []

    def restart(self) -> None:
        """Stop the server and start it again on the same port and home."""
        self.process.stop()
        self.process = _spawn(self.port, self.home, self.log_dir, self.flags, restarted=True)

    def stop(self) -> None:
        """Stop the server by its PID."""
        self.process.stop()


def make_certificate(directory: Path) -> Path:
    """Write a self-signed certificate and key for 127.0.0.1 and localhost; return the PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stowage test FTPS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "ftpd.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _spawn(
    port: int, home: Path, log_dir: Path, flags: list[str], *, restarted: bool = False
) -> ServerProcess:
    try:
        import pyftpdlib  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "pyftpdlib is missing: pip install pyftpdlib pyopenssl (requirements/test.txt)."
        ) from None
    argv = [
        sys.executable,
        "-m",
        "tests.servers.ftpd",
        "--port",
        str(port),
        "--home",
        str(home),
        *flags,
    ]
    name = f"ftpd-{port}{'-again' if restarted else ''}"
    process = ServerProcess(
        name, argv, port=port, log_dir=log_dir, cwd=str(_ROOT), env={"FTPD_PASSWORD": PASSWORD}
    )
    process.wait_ready()
    return process


def start_ftpd(
    log_dir: Path,
    home: Path,
    *,
    cert: Path | None = None,
    legacy: str | None = None,
    quota: int | None = None,
    data_faults: bool = False,
) -> FTPServer:
    """Start a server on a free 127.0.0.1 port serving ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    flags: list[str] = []
    fault_file = None
    if data_faults:
        fault_file = log_dir / f"ftpd-{port}-data-fault.json"
        flags += ["--fault-file", str(fault_file)]
    if cert is not None:
        flags += ["--cert", str(cert)]
    if legacy is not None:
        flags += ["--legacy", legacy]
    if quota is not None:
        flags += ["--quota", str(quota)]
    process = _spawn(port, home, log_dir, flags)
    return FTPServer(process, port, home, log_dir, flags, cert, fault_file)


@pytest.fixture(scope="session")
def ftpd(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Run one plain FTP server for the whole session."""
    server = start_ftpd(server_logs, tmp_path_factory.mktemp("ftp-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftpd_tls(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Run one FTPS server (TLS required on control and data) for the whole session."""
    cert = make_certificate(tmp_path_factory.mktemp("ftps-cert"))
    server = start_ftpd(server_logs, tmp_path_factory.mktemp("ftps-home"), cert=cert)
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["unix", "dos", "names"])
def ftpd_legacy(
    request: pytest.FixtureRequest, server_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FTPServer]:
    """Run a server without MLSD/MLST, one per LIST format, that will not rename over files."""
    home = tmp_path_factory.mktemp(f"ftp-legacy-{request.param}")
    server = start_ftpd(server_logs, home, legacy=request.param)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftpd_full(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Run a server whose disk holds 1 MiB in all."""
    server = start_ftpd(server_logs, tmp_path_factory.mktemp("ftp-full"), quota=1024 * 1024)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ftpd_faulty(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPServer]:
    """Run a server whose data connections fail when told (see FTPServer.fault_data)."""
    server = start_ftpd(server_logs, tmp_path_factory.mktemp("ftp-faulty"), data_faults=True)
    yield server
    server.stop()


def _fired_file(fault_file: Path) -> Path:
    return fault_file.with_name(fault_file.name + ".fired")


# -- the server process ---------------------------------------------------------------


def _faulty_dtp(base: Any, fault_file: Path) -> Any:
    """Return a DTP handler class failing transfers as ``fault_file`` says."""

    class FaultyDTP(base):  # type: ignore[misc]
        _fault: dict[str, Any] | None = None
        _checked = False
        _start = 0
        _cut_pending: int | None = None

        def use_sendfile(self) -> bool:
            return False  # every byte sent goes through send(), where the cut is made

        def _take_fault(self, command: str) -> dict[str, Any] | None:
            if not self._checked:
                self._checked = True
                try:
                    spec = json.loads(fault_file.read_text())
                except (OSError, ValueError):
                    spec = None
                if spec is not None and spec["command"] == command:
                    self._fault = spec
            return self._fault

        def _fire(self, where: int) -> None:
            fault = self._fault
            assert fault is not None
            self._fault = None
            with _fired_file(fault_file).open("a") as fired:
                fired.write(f"{fault['command']} {fault['how']} {where}\n")
            if not fault["every"]:
                fault_file.unlink(missing_ok=True)
            if fault["how"] == "stall":
                events = self.ioloop.READ if self.receive else self.ioloop.WRITE
                self.del_channel()
                self.ioloop.call_later(
                    fault["seconds"],
                    lambda: self._closed or self.add_channel(events=events),
                    _errback=self.handle_error,
                )
                return
            if fault["how"] == "reset":
                with contextlib.suppress(OSError):
                    self.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                self._resp = ("426 Connection reset; transfer aborted.", logging.info)
            else:
                self._resp = ("226 Transfer complete.", logging.info)
            self.close()

        def push_with_producer(self, producer: Any) -> None:
            self._start = producer.file.tell() if hasattr(producer, "file") else 0
            super().push_with_producer(producer)

        def send(self, data: bytes) -> int:
            fault = None if self.file_obj is None else self._take_fault("RETR")
            if fault is None:
                return int(super().send(data))
            room = fault["at"] - (self._start + self.tot_bytes_sent)
            if room > 0:
                return int(super().send(data[:room]))
            self._fire(self._start + self.tot_bytes_sent)
            return 0

        def recv(self, size: int) -> bytes:
            chunk: bytes = super().recv(size)
            fault = self._take_fault("STOR") if self.receive else None
            if fault is None or not chunk:
                return chunk
            room = fault["at"] - self.tot_bytes_received
            if room <= len(chunk):
                self._cut_pending = fault["at"]
                if fault["how"] != "stall":
                    chunk = chunk[: max(room, 0)]
            return chunk

        def handle_read(self) -> None:
            super().handle_read()
            where, self._cut_pending = self._cut_pending, None
            if where is not None and not self._closed:
                self._fire(where)

        handle_read_event = handle_read  # the base class binds its own

    return FaultyDTP


def _used_bytes(home: str) -> int:
    return sum(
        os.path.getsize(os.path.join(top, name))
        for top, _, names in os.walk(home)
        for name in names
        if os.path.exists(os.path.join(top, name))
    )


def _serve(args: argparse.Namespace) -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.servers import FTPServer as Server

    home = os.path.realpath(args.home)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, os.environ["FTPD_PASSWORD"], home, perm="elradfmwMT")

    handler: Any
    if args.cert:
        from pyftpdlib.handlers import TLS_FTPHandler

        class TLSHandler(TLS_FTPHandler):  # type: ignore[misc]
            certfile = args.cert
            tls_control_required = True
            tls_data_required = True

        handler = TLSHandler
    else:

        class Handler(FTPHandler):  # type: ignore[misc]
            pass

        handler = Handler

    if args.legacy:
        style = args.legacy

        class LegacyFS(AbstractedFS):  # type: ignore[misc]
            def rename(self, src: str, dst: str) -> None:
                if os.path.exists(dst):
                    raise OSError(
                        errno.EEXIST, "Cannot create a file when that file already exists"
                    )
                super().rename(src, dst)

            def format_list(self, basedir: str, listing: list[str], ignore_err: bool = True) -> Any:
                if style == "unix":
                    yield from super().format_list(basedir, listing, ignore_err)
                    return
                for name in listing:
                    path = os.path.join(basedir, name)
                    if style == "names":
                        line = f"{name}\r\n"
                    elif os.path.isdir(path):
                        line = f"01-02-24  10:30AM       <DIR>          {name}\r\n"
                    else:
                        size = os.path.getsize(path)
                        line = f"01-02-24  10:30AM       {size:>14} {name}\r\n"
                    yield line.encode(self.cmd_channel.encoding)

        handler.abstracted_fs = LegacyFS
        handler.proto_cmds = {
            cmd: spec for cmd, spec in handler.proto_cmds.items() if cmd not in ("MLSD", "MLST")
        }

    if args.quota:
        quota = args.quota

        class SmallDisk(AbstractedFS):  # type: ignore[misc]
            def open(self, filename: str, mode: str) -> Any:
                handle = super().open(filename, mode)
                if "w" not in mode and "a" not in mode and "+" not in mode:
                    return handle
                used = _used_bytes(home)

                class Limited:
                    name = handle.name

                    def __init__(self) -> None:
                        self.written = 0

                    @property
                    def closed(self) -> bool:
                        return bool(handle.closed)

                    def write(self, data: bytes) -> int:
                        if used + self.written + len(data) > quota:
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                        self.written += len(data)
                        return int(handle.write(data))

                    def __getattr__(self, attr: str) -> Any:
                        return getattr(handle, attr)

                return Limited()

        class FullDiskDTP(DTPHandler):  # type: ignore[misc]
            def handle_error(self) -> None:
                error = sys.exc_info()[1]
                cause = getattr(error, "__cause__", None) or error
                if getattr(cause, "errno", None) == errno.ENOSPC:
                    self._resp = (
                        "452 Insufficient storage space; transfer aborted.",
                        logging.warning,
                    )
                    self.close()
                    return
                super().handle_error()

        handler.abstracted_fs = SmallDisk
        handler.dtp_handler = FullDiskDTP

    if args.fault_file:
        handler.dtp_handler = _faulty_dtp(handler.dtp_handler, Path(args.fault_file))

    handler.authorizer = authorizer
    handler.banner = "stowage test server ready."
    # pyftpdlib waits 3 s before refusing a login (against guessing); the tests of
    # refused logins need the refusal, not the wait.
    handler.auth_failed_timeout = 0.1
    handler.permit_foreign_addresses = False
    server = Server(("127.0.0.1", args.port), handler)
    server.max_cons = 256
    server.serve_forever(handle_exit=True)


def main() -> None:
    """Parse the command line and serve until stopped."""

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--legacy", choices=["unix", "dos", "names"])
    parser.add_argument("--quota", type=int)
    parser.add_argument("--fault-file")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("FTPD_DEBUG") else logging.WARNING,
        format="%(asctime)s %(message)s",
    )
    started = time.monotonic()
    try:
        _serve(args)
    finally:
        print(f"ftpd on {args.port} served {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
