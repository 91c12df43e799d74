"""An SSH server with SFTP on loopback, for the SFTP driver's tests and the benchmarks.

As root the server is OpenSSH's ``sshd`` (Debian's openssh-server, installed by
``make system-deps``), in the foreground on a free port, with generated host
and client keys and a dedicated login, ``stowage-test``. Without root, where
sshd cannot switch users, it is asyncssh's own SFTP server in a child process
(this module run as a program; ``STOWAGE_TEST_SSHD=asyncssh`` chooses it as
root too). Either way the server is stopped by its PID.

``file_size_limit`` starts a server whose processes may not write files past
that many bytes (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so a write fails
instead of killing the server): the way these tests fill the "disk".
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port, require_executable

__all__ = [
    "STAND_INS",
    "SSHServer",
    "pytest_report_header",
    "pytest_terminal_summary",
    "sftp_options",
    "sftp_root",
    "sshd",
    "sshd_small_files",
    "start_sshd",
    "wants_openssh",
]

#: The login the tests use on OpenSSH (created when missing).
TEST_USER = "stowage-test"
#: Passphrase of the encrypted client key: a test value, not a secret.
KEY_PASSPHRASE = "stowage-test-key-passphrase"
SSHD = "/usr/sbin/sshd"
#: Ports of the asyncssh servers started in place of OpenSSH's sshd in this run.
STAND_INS: list[int] = []


def wants_openssh() -> bool:
    """Return whether this run's SSH servers are OpenSSH's sshd (root, not overridden)."""
    return os.geteuid() == 0 and os.environ.get("STOWAGE_TEST_SSHD") != "asyncssh"


def _stand_in_reason() -> str:
    if os.geteuid() != 0:
        return "not running as root, so sshd cannot switch users"
    return "STOWAGE_TEST_SSHD=asyncssh"


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the report header which SSH server the SFTP tests get."""
    if wants_openssh():
        return f"SFTP server: OpenSSH's sshd ({SSHD})"
    return (
        f"SFTP server: asyncssh's SFTP server stands in for OpenSSH's sshd ({_stand_in_reason()})"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the asyncssh stand-in in the summary when SFTP tests ran on it."""
    if STAND_INS:
        terminalreporter.write_line(
            f"SFTP tests ran on asyncssh's SFTP server, not OpenSSH's sshd "
            f"({_stand_in_reason()}; {len(STAND_INS)} server(s) started)",
            yellow=True,
        )


def _shared_password() -> str:
    """Return the test login's password, the same for every process on this machine.

    Every server (this suite's, the demo's, the benchmarks') shares the one
    system login, so a password per process would lock the others out. It
    is made once, at random, and kept in a file only root can read.
    """
    folder = Path(tempfile.gettempdir()) / "stowage-test-sshd"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "password"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(100):  # another process may be writing it right now
            if text := path.read_text().strip():
                return text
            time.sleep(0.01)
        raise RuntimeError(f"{path} stays empty: delete it and run again") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f"pw-{secrets.token_hex(12)}")
    return path.read_text().strip()


#: The login's password (see :func:`_shared_password`).
_PASSWORD = _shared_password()
_INSTALL = "apt-get install openssh-server openssh-client (make system-deps does it)"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _keygen(path: Path, passphrase: str = "") -> None:
    program = require_executable("ssh-keygen", _INSTALL)
    _run(program, "-q", "-t", "ed25519", "-N", passphrase, "-C", "stowage-test", "-f", str(path))


@dataclass
class SSHServer:
    """A running SSH server, its keys, its login and where test roots live."""

    process: ServerProcess
    port: int
    kind: str
    username: str
    password: str
    key_path: Path
    encrypted_key_path: Path
    known_hosts: Path
    host_key_line: str
    base: Path
    _owner: tuple[int, int] | None = field(default=None, repr=False)

    @property
    def key_text(self) -> str:
        """Return the unencrypted client private key, in OpenSSH PEM form."""
        return self.key_path.read_text()

    def new_root(self) -> str:
        """Create an empty directory the login owns and return its path."""
        root = self.base / "roots" / secrets.token_hex(6)
        root.mkdir(mode=0o755)
        if self._owner is not None:
            os.chown(root, *self._owner)
        return str(root)

    def options(self, root: str) -> dict[str, Any]:
        """Return stowage OPTIONS for files under ``root``, logging in with the key."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.username,
            "private_key": str(self.key_path),
            "known_hosts": str(self.known_hosts),
            "root_path": root,
        }

    def paramiko(self) -> tuple[Any, Any]:
        """Return an independent paramiko SSH client and its SFTP client, host key checked."""
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            "127.0.0.1",
            port=self.port,
            username=self.username,
            key_filename=str(self.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        return client, client.open_sftp()

    def drop_connections(self) -> int:
        """Cut every open SSH session, leaving the server listening; return how many."""
        if self.kind == "asyncssh":
            os.kill(self.process.pid, signal.SIGUSR1)
            return 1
        victims = _descendants(self.process.pid)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(victims)

    def stop(self) -> None:
        """Stop the server by its PID and remove its files."""
        self.process.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    """Return the PIDs of every process below ``pid`` (sshd's per-connection children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _ensure_user(password: str) -> tuple[int, int]:
    """Create the test login if missing, give it ``password``, return its uid and gid."""
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        _run(
            require_executable("useradd", "apt-get install passwd"),
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/bin/sh",
            TEST_USER,
        )
        entry = pwd.getpwnam(TEST_USER)
    subprocess.run(
        [require_executable("chpasswd", "apt-get install passwd")],
        input=f"{TEST_USER}:{password}\n".encode(),
        check=True,
        capture_output=True,
    )
    return entry.pw_uid, entry.pw_gid


def _limited(argv: list[str], file_size_limit: int | None) -> list[str]:
    if file_size_limit is None:
        return argv
    # dash's ulimit -f counts 512-byte blocks; an ignored SIGXFSZ turns the
    # over-limit write into an EFBIG error the server reports as a failure.
    blocks = max(1, file_size_limit // 512)
    script = f"ulimit -f {blocks}; trap '' XFSZ; exec {shlex.join(argv)}"
    return ["/bin/sh", "-c", script]


def start_sshd(
    log_dir: Path, *, file_size_limit: int | None = None, client_alive: int | None = None
) -> SSHServer:
    """Start an SSH server with SFTP on a free 127.0.0.1 port and wait until it listens.

    With ``client_alive`` the server asks an idle client for an
    answer every that many seconds and drops a connection that misses one.
    """
    base = Path(tempfile.mkdtemp(prefix="stowage-sshd-"))
    base.chmod(0o755)
    (base / "roots").mkdir(mode=0o755)
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    _keygen(keys / "host_key")
    _keygen(keys / "client_key")
    _keygen(keys / "client_key_encrypted", KEY_PASSPHRASE)
    authorized = keys / "authorized_keys"
    authorized.write_text(
        (keys / "client_key.pub").read_text() + (keys / "client_key_encrypted.pub").read_text()
    )
    authorized.chmod(0o644)
    password = _PASSWORD
    port = free_port()
    host_public = (keys / "host_key.pub").read_text().split()
    host_key_line = f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}"
    known_hosts = keys / "known_hosts"
    known_hosts.write_text(host_key_line + "\n")
    owner: tuple[int, int] | None = None
    try:
        if wants_openssh():
            if not os.access(SSHD, os.X_OK):
                raise RuntimeError(f"OpenSSH's sshd is missing at {SSHD}: {_INSTALL}")
            owner = _ensure_user(password)
            os.chown(base / "roots", *owner)
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            config = base / "sshd_config"
            config.write_text(
                "\n".join(
                    [
                        "ListenAddress 127.0.0.1",
                        f"Port {port}",
                        f"HostKey {keys / 'host_key'}",
                        f"AuthorizedKeysFile {authorized}",
                        "UsePAM no",
                        "PasswordAuthentication yes",
                        "KbdInteractiveAuthentication no",
                        "PubkeyAuthentication yes",
                        "PermitRootLogin no",
                        f"AllowUsers {TEST_USER}",
                        "StrictModes no",
                        "PidFile none",
                        "MaxStartups 100",
                        "MaxSessions 100",
                        "LogLevel VERBOSE",
                        "Subsystem sftp internal-sftp",
                        *(
                            [f"ClientAliveInterval {client_alive}", "ClientAliveCountMax 1"]
                            if client_alive
                            else []
                        ),
                        "",
                    ]
                )
            )
            argv = [SSHD, "-D", "-e", "-f", str(config)]
            kind, username = "openssh", TEST_USER
        else:
            argv = [
                sys.executable,
                "-m",
                "tests.servers.sshd",
                str(port),
                str(keys / "host_key"),
                str(authorized),
                str(client_alive or 0),
            ]
            kind, username = "asyncssh", pwd.getpwuid(os.geteuid()).pw_name
        process = ServerProcess(
            f"sshd-{port}",
            _limited(argv, file_size_limit),
            port=port,
            log_dir=log_dir,
            env={"STOWAGE_TEST_SFTP_PASSWORD": password},
            cwd=str(Path(__file__).resolve().parent.parent.parent),
        )
        process.wait_ready()
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    if kind == "asyncssh":
        STAND_INS.append(port)
    return SSHServer(
        process=process,
        port=port,
        kind=kind,
        username=username,
        password=password,
        key_path=keys / "client_key",
        encrypted_key_path=keys / "client_key_encrypted",
        known_hosts=known_hosts,
        host_key_line=host_key_line,
        base=base,
        _owner=owner,
    )


@pytest.fixture(scope="session")
def sshd(server_logs: Path) -> Iterator[SSHServer]:
    """Run one SSH server for the whole test session."""
    server = start_sshd(server_logs)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sshd_small_files(server_logs: Path) -> Iterator[SSHServer]:
    """Run an SSH server that cannot write files past 1 MiB (a full disk, in effect)."""
    server = start_sshd(server_logs, file_size_limit=1024 * 1024)
    yield server
    server.stop()


@pytest.fixture
def sftp_root(sshd: SSHServer) -> str:
    """Return a new, empty directory on the SSH server."""
    return sshd.new_root()


@pytest.fixture
def sftp_options(sshd: SSHServer, sftp_root: str) -> dict[str, Any]:
    """Return stowage OPTIONS for a new, empty directory on the SSH server."""
    return sshd.options(sftp_root)


def _serve(port: int, host_key: str, authorized_keys: str, client_alive: int = 0) -> None:
    """Serve SFTP with asyncssh until terminated (the server when not running as root)."""
    import asyncio

    import asyncssh

    password = os.environ["STOWAGE_TEST_SFTP_PASSWORD"]
    login = pwd.getpwuid(os.geteuid()).pw_name
    connections: set[Any] = set()

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn: Any) -> None:
            self.conn = conn
            connections.add(conn)

        def connection_lost(self, exc: Exception | None) -> None:
            connections.discard(self.conn)

        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, given: str) -> bool:
            return username == login and secrets.compare_digest(given, password)

    class Files(asyncssh.SFTPServer):
        def rename(self, oldpath: bytes, newpath: bytes) -> None:
            # SFTPv3 rename must not replace the target: link() refuses a taken
            # name atomically, as OpenSSH's server does.
            old, new = self.map_path(oldpath), self.map_path(newpath)
            try:
                os.link(old, new)
            except FileExistsError:
                raise asyncssh.SFTPFailure("File already exists") from None
            os.unlink(old)

    async def main() -> None:
        server = await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[host_key],
            authorized_client_keys=authorized_keys,
            server_factory=Server,
            sftp_factory=Files,
            allow_scp=False,
            keepalive_interval=client_alive,
            keepalive_count_max=1,
        )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: [c.abort() for c in list(connections)])
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
