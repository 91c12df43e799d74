"""The SFTP driver on OpenSSH's sshd: the kit, interop with paramiko, host keys, failures."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import override_settings

from stowage import SFTPStorage
from stowage.drivers.sftp import SFTPDriver, SFTPOptions
from stowage.exceptions import (
    AccessDenied,
    ConfigurationError,
    IncompleteRead,
    ServiceError,
    ServiceUnavailable,
    UnsupportedOperation,
)
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)
from stowage.testing.hostile_names import Reach
from tests.servers._process import free_port
from tests.servers.sshd import KEY_PASSPHRASE, SSHServer, start_sshd

BASE_URL = "https://files.example.com/media/"


@pytest.fixture
def options(sftp_options: dict[str, Any]) -> dict[str, Any]:
    return sftp_options


@pytest.fixture(params=["asyncssh", "openssh"])
def client(request: pytest.FixtureRequest) -> str:
    """Either SSH client: a test that takes it runs on both."""
    return str(request.param)


@pytest.fixture
def both(sftp_options: dict[str, Any], client: str) -> dict[str, Any]:
    """The options, with either SSH client."""
    return {**sftp_options, "client": client}


class TestSFTPDriver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> Any:
        driver = SFTPDriver(SFTPOptions(**options))
        yield driver
        driver.close()


class TestSFTPStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    hostile_examples = 60

    @pytest.fixture
    def storage(self, sshd: SSHServer, sftp_root: str) -> Any:
        # Both secrets configured, so the kit can look for them where they must not be.
        self.secret_values = (sshd.password, sshd.key_text)
        storage = SFTPStorage(
            location="media",
            base_url=BASE_URL,
            **{**sshd.options(sftp_root), "private_key": sshd.key_text},
            password=sshd.password,
        )
        yield storage
        storage.close()

    @pytest.fixture
    def broken_storage(self, sshd: SSHServer, sftp_root: str) -> Any:
        storage = _storage(**{**sshd.options(sftp_root), "port": free_port()})
        yield storage
        storage.close()

    @pytest.fixture
    def hostile_reach(self, storage: SFTPStorage, sftp_root: str) -> Reach:
        # The directory holding every test's root, the SFTP root one level down.
        root = Path(sftp_root)
        return Reach(storage.driver, root=root.parent, prefix=root.name)


def _storage(**options: Any) -> SFTPStorage:
    return SFTPStorage(**options)


def _stored(server: SSHServer, root: str) -> list[str]:
    """Return the names in ``root`` on the server, as paramiko lists them."""
    client, sftp = server.paramiko()
    try:
        return sorted(sftp.listdir(root))
    finally:
        client.close()


def test_stowage_writes_paramiko_reads(sshd: SSHServer, both: dict[str, Any]) -> None:
    storage = _storage(**both)
    name = storage.save("docs/report.pdf", ContentFile(b"%PDF" * 1000))
    client, sftp = sshd.paramiko()
    try:
        with sftp.open(f"{both['root_path']}/{name}", "rb") as handle:
            assert handle.read() == b"%PDF" * 1000
        assert sftp.listdir(f"{both['root_path']}/docs") == ["report.pdf"]
    finally:
        client.close()
        storage.close()


def test_paramiko_writes_stowage_reads(sshd: SSHServer, both: dict[str, Any]) -> None:
    client, sftp = sshd.paramiko()
    try:
        sftp.mkdir(f"{both['root_path']}/in")
        sftp.putfo(io.BytesIO(b'{"a": 1}'), f"{both['root_path']}/in/data.json")
    finally:
        client.close()
    storage = _storage(**both)
    assert storage.open("in/data.json").read() == b'{"a": 1}'
    assert storage.listdir("in") == ([], ["data.json"])
    assert storage.size("in/data.json") == 8
    storage.close()


def test_password_login(sshd: SSHServer, sftp_root: str) -> None:
    options = {**sshd.options(sftp_root), "private_key": None, "password": sshd.password}
    storage = _storage(**options)
    assert storage.save("p.txt", ContentFile(b"by password")) == "p.txt"
    storage.close()


def test_bad_password_is_refused_without_showing_it(sshd: SSHServer, sftp_root: str) -> None:
    wrong = "not-the-password-4c1e"
    storage = _storage(**{**sshd.options(sftp_root), "private_key": None, "password": wrong})
    with pytest.raises(AccessDenied, match="refused the login") as refused:
        storage.exists("x")
    assert wrong not in str(refused.value)
    assert isinstance(refused.value, PermissionError)


def test_encrypted_key_with_passphrase(sshd: SSHServer, sftp_root: str) -> None:
    options = {
        **sshd.options(sftp_root),
        "private_key": str(sshd.encrypted_key_path),
        "private_key_passphrase": KEY_PASSPHRASE,
    }
    storage = _storage(**options)
    assert storage.save("k.txt", ContentFile(b"k")) == "k.txt"
    storage.close()
    bad = _storage(**{**options, "private_key_passphrase": "wrong-passphrase-77"})
    with pytest.raises(ConfigurationError, match="'private_key'") as refused:
        bad.exists("k.txt")
    assert "wrong-passphrase-77" not in str(refused.value)


def test_private_key_text_never_shows(sshd: SSHServer, sftp_root: str) -> None:
    storage = _storage(**{**sshd.options(sftp_root), "private_key": sshd.key_text})
    assert storage.save("t.txt", ContentFile(b"t")) == "t.txt"
    shown = repr(storage) + repr(storage.deconstruct()) + repr(storage.driver_options)
    assert sshd.key_text.strip().splitlines()[1] not in shown
    storage.close()


def test_unknown_host_key_refused_by_default(
    sshd: SSHServer, sftp_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    storage = _storage(**{**sshd.options(sftp_root), "known_hosts": str(empty)}, client=client)
    with pytest.raises(AccessDenied, match=r"is unknown.*accept_unknown_host_keys"):
        storage.exists("x")
    # Without the option, ~/.ssh/known_hosts is read; a home without one trusts nothing.
    monkeypatch.setenv("HOME", str(tmp_path))
    options = sshd.options(sftp_root)
    del options["known_hosts"]
    with pytest.raises(AccessDenied, match="is unknown"):
        _storage(**options, client=client).exists("x")


def test_unknown_host_key_accepted_when_asked(
    sshd: SSHServer, sftp_root: str, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    storage = _storage(
        **{**sshd.options(sftp_root), "known_hosts": str(empty), "accept_unknown_host_keys": True}
    )
    storage.save("a.txt", ContentFile(b"trusted on first use"))
    pinned = storage.driver._connection.link.host_keys.pinned  # type: ignore[attr-defined]
    assert pinned is not None
    assert pinned.export_public_key().decode().split()[1] == sshd.host_key_line.split()[2]
    # A new connection must present the same key, which it does.
    assert sshd.drop_connections() > 0
    assert storage.open("a.txt").read() == b"trusted on first use"
    storage.close()


def test_wrong_host_key_refused_even_when_accepting_unknown(
    sshd: SSHServer, sftp_root: str, tmp_path: Path, client: str
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
        check=True,
        capture_output=True,
    )
    kind, body = (other.with_suffix(".pub")).read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {body}\n")
    for accept in (False, True):
        storage = _storage(
            **{
                **sshd.options(sftp_root),
                "known_hosts": str(known),
                "accept_unknown_host_keys": accept,
                "client": client,
            }
        )
        with pytest.raises(AccessDenied, match="does not match"):
            storage.exists("x")


def test_missing_known_hosts_file_names_the_option(
    sshd: SSHServer, sftp_root: str, client: str
) -> None:
    storage = _storage(
        **{**sshd.options(sftp_root), "known_hosts": "/no/such/known_hosts"}, client=client
    )
    with pytest.raises(ImproperlyConfigured, match="'known_hosts'"):
        storage.exists("x")


def test_refused_connection(sshd: SSHServer, sftp_root: str, client: str) -> None:
    storage = _storage(**{**sshd.options(sftp_root), "port": free_port()}, client=client)
    with pytest.raises(ServiceUnavailable, match="Cannot connect") as refused:
        storage.save("x.txt", ContentFile(b"x"))
    assert isinstance(refused.value, ConnectionError)


def test_reconnects_after_the_server_drops_the_connection(
    sshd: SSHServer, both: dict[str, Any]
) -> None:
    storage = _storage(**both)
    storage.save("before.txt", ContentFile(b"before"))
    assert sshd.drop_connections() > 0
    assert storage.exists("before.txt")
    assert sshd.drop_connections() > 0
    assert storage.open("before.txt").read() == b"before"
    assert sshd.drop_connections() > 0
    assert storage.save("after.txt", ContentFile(b"after")) == "after.txt"
    assert sshd.drop_connections() > 0
    assert storage.listdir("") == ([], ["after.txt", "before.txt"])

    async def scenario() -> bytes:
        assert sshd.drop_connections() > 0
        async with storage.aopen("after.txt") as handle:
            data: bytes = await handle.read()
        return data

    assert asyncio.run(scenario()) == b"after"
    storage.close()


def test_threads_share_one_connection(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    connects = []
    real_connect = asyncssh.connect

    async def counting_connect(*args: Any, **kwargs: Any) -> Any:
        connects.append(threading.current_thread().name)
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(asyncssh, "connect", counting_connect)
    storage = _storage(**options)
    barrier = threading.Barrier(8)

    def work(index: int) -> bytes:
        barrier.wait()
        name = storage.save(f"t/{index}.bin", ContentFile(bytes([index]) * 300_000))
        return bytes(storage.open(name).read())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert results == [bytes([i]) * 300_000 for i in range(8)]
    assert len(connects) == 1
    storage.close()


def test_full_disk_is_a_clear_error(sshd_small_files: SSHServer, tmp_path: Path) -> None:
    server = sshd_small_files
    root = server.new_root()
    storage = _storage(**server.options(root), password=server.password)
    storage.save("small.txt", ContentFile(b"fits"))
    with pytest.raises(ServiceError, match="full disk") as failed:
        storage.save("big.bin", ContentFile(b"\0" * (3 * 1024 * 1024)))
    assert server.password not in str(failed.value)
    assert storage.listdir("") == ([], ["small.txt"])
    assert _stored(server, root) == ["small.txt"]  # no temporary file left either
    storage.close()


def test_a_small_write_sent_with_the_close_that_fails_leaves_nothing(
    sshd: SSHServer, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """A small file's write goes with the close; if it fails, nothing is renamed into place."""
    from stowage.drivers.sftp.writing import Writer

    root = sshd.new_root()
    storage = _storage(**sshd.options(root), client=client)
    storage.save("kept.txt", ContentFile(b"kept"))

    async def refused(self: Writer, upload: Any, data: bytes, offset: int) -> None:
        await upload.handle.write(data, offset)  # sent, then reported as failed
        raise ServiceError("the server could not write")

    monkeypatch.setattr(Writer, "write", refused)
    with pytest.raises(ServiceError, match="could not write"):
        storage.save("small.txt", ContentFile(b"x" * 1024))
    with pytest.raises(ServiceError, match="could not write"):
        storage.save("kept.txt", ContentFile(b"y" * 1024))  # an overwrite alike
    monkeypatch.undo()
    assert storage.listdir("") == ([], ["kept.txt"])
    assert storage.open("kept.txt").read() == b"kept"
    assert _stored(sshd, root) == ["kept.txt"]  # no temporary file left either
    storage.close()


def test_url_with_base_url(options: dict[str, Any]) -> None:
    storage = _storage(**options, base_url=BASE_URL, location="site")
    assert storage.url("dir/a b#1.txt") == BASE_URL + "site/dir/a%20b%231.txt"
    assert storage.url(None) == BASE_URL + "site/"


def test_url_without_base_url_says_what_to_set(options: dict[str, Any]) -> None:
    storage = _storage(**options)
    with pytest.raises(UnsupportedOperation, match="'base_url'"):
        storage.url("a.txt")
    with pytest.raises(UnsupportedOperation):
        storage.url("a.txt", expire=60)


def test_modes_and_owner(sshd: SSHServer, both: dict[str, Any]) -> None:
    client, sftp = sshd.paramiko()
    try:
        own = sftp.stat(both["root_path"])
        storage = _storage(**both, file_mode=0o640, dir_mode=0o750, uid=own.st_uid, gid=own.st_gid)
        storage.save("sub/dir/f.txt", ContentFile(b"f"))
        root = both["root_path"]
        file_attrs = sftp.stat(f"{root}/sub/dir/f.txt")
        assert stat.S_IMODE(file_attrs.st_mode) == 0o640
        assert (file_attrs.st_uid, file_attrs.st_gid) == (own.st_uid, own.st_gid)
        assert stat.S_IMODE(sftp.stat(f"{root}/sub").st_mode) == 0o750
        assert stat.S_IMODE(sftp.stat(f"{root}/sub/dir").st_mode) == 0o750
    finally:
        client.close()
    storage.close()


def test_server_side_copy(both: dict[str, Any]) -> None:
    storage = _storage(**both)
    storage.save("src.bin", ContentFile(b"c" * 3_000_000))
    assert storage.copy("src.bin", "copies/dst.bin") == "copies/dst.bin"
    assert storage.open("copies/dst.bin").read() == b"c" * 3_000_000


def test_django_storages_settings_and_names(sshd: SSHServer, sftp_root: str) -> None:
    with override_settings(
        SFTP_STORAGE_HOST="127.0.0.1",
        SFTP_STORAGE_ROOT=sftp_root,
        SFTP_KNOWN_HOST_FILE=str(sshd.known_hosts),
        SFTP_STORAGE_PARAMS={
            "port": sshd.port,
            "username": sshd.username,
            "key_filename": str(sshd.key_path),
        },
        SFTP_STORAGE_INTERACTIVE=False,
        SFTP_STORAGE_FILE_MODE=0o600,
        SFTP_BASE_URL=BASE_URL,
    ):
        storage = SFTPStorage()
        assert storage.save("s.txt", ContentFile(b"settings")) == "s.txt"
        assert storage.url("s.txt") == BASE_URL + "s.txt"
        storage.close()
    aliased = SFTPStorage(
        host="127.0.0.1",
        params={"port": sshd.port, "username": sshd.username, "password": sshd.password},
        known_host_file=str(sshd.known_hosts),
        root_path=sftp_root,
        dir_mode=0o700,
    )
    assert aliased.open("s.txt").read() == b"settings"
    assert sshd.password not in repr(aliased.deconstruct())
    aliased.close()


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"interactive": True}, "'interactive'"),
        ({"params": {"pkey": object()}}, "'params'"),
        ({"base_url": "https://no-slash"}, "'base_url'"),
        ({"timeout": 0}, "'timeout'"),
        ({"hots": "x"}, "'hots'"),
        ({"host": ""}, "'host'"),
    ],
)
def test_bad_options_name_themselves(
    options: dict[str, Any], bad: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        _storage(**{**options, **bad}).exists("x")


def test_look_for_keys_false_is_honoured_or_refused(options: dict[str, Any]) -> None:
    keyless = {name: value for name, value in options.items() if name != "private_key"}
    no_default_keys = {**keyless, "params": {"look_for_keys": False}}
    # asyncssh cannot offer the agent's keys without the default key files.
    with pytest.raises(ImproperlyConfigured, match=r"params\['look_for_keys'\].*private_key"):
        SFTPOptions(**no_default_keys, use_agent=True)
    # ssh without a key, the agent or the default key files could not log in.
    with pytest.raises(ImproperlyConfigured, match=r"params\['look_for_keys'\].*use_agent"):
        SFTPOptions(**no_default_keys, client="openssh")
    # Honoured: asyncssh offers no key (a password may log in), ssh only the agent's.
    assert SFTPOptions(**no_default_keys).params == {"look_for_keys": False}
    assert SFTPOptions(**no_default_keys, client="openssh", use_agent=True).use_agent
    # With a key, nothing is refused: the key is offered.
    assert SFTPOptions(**options, params={"look_for_keys": False}, use_agent=True).use_agent


def test_a_file_cut_short_while_read_is_never_complete(
    sshd: SSHServer, both: dict[str, Any]
) -> None:
    driver = SFTPDriver(SFTPOptions(**both))
    driver.put("cut.bin", io.BytesIO(b"z" * (8 * 1024 * 1024)))
    download = driver.get("cut.bin")
    client, sftp = sshd.paramiko()
    try:
        sftp.truncate(f"{both['root_path']}/cut.bin", 2 * 1024 * 1024)
    finally:
        client.close()
    with pytest.raises(IncompleteRead, match="ended"):
        b"".join(download)
    download.close()
    driver.close()


def test_a_small_file_is_read_in_one_request(
    sshd: SSHServer, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second READ to find the end: the one answer, shorter than asked, is the whole file."""
    import asyncssh

    driver = SFTPDriver(SFTPOptions(**options))
    large = bytes(range(256)) * 12 * 1024  # 3 MiB: the first block, then parallel reads
    driver.put("small.txt", io.BytesIO(b"s" * 1024))
    driver.put("large.bin", io.BytesIO(large))
    reads: list[tuple[int, int]] = []
    original = asyncssh.sftp.SFTPClientHandler.read

    async def counted(self: Any, handle: bytes, offset: int, length: int) -> Any:
        reads.append((offset, length))
        return await original(self, handle, offset, length)

    monkeypatch.setattr(asyncssh.sftp.SFTPClientHandler, "read", counted)
    closes: list[bytes] = []
    close = asyncssh.sftp.SFTPClientHandler.close

    async def counted_close(self: Any, handle: bytes) -> Any:
        closes.append(handle)
        return await close(self, handle)

    monkeypatch.setattr(asyncssh.sftp.SFTPClientHandler, "close", counted_close)
    download = driver.get("small.txt")
    assert [offset for offset, _ in reads] == [0]
    # Read whole with the open: closed at once, before the download is.
    deadline = time.monotonic() + 5
    while not closes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(closes) == 1
    assert b"".join(download) == b"s" * 1024
    download.close()
    reads.clear()
    assert b"".join(driver.get("large.bin")) == large
    assert b"".join(driver.get("large.bin", start=5, end=300_000)) == large[5:300_000]
    assert reads[0][0] == 0
    assert len(reads) > 2
    driver.close()


def test_ssh_agent_keys(
    sshd: SSHServer, sftp_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With use_agent, the key comes from the agent at SSH_AUTH_SOCK (and only from there)."""
    from tests.servers._process import require_executable

    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        [
            require_executable("ssh-agent", "apt-get install openssh-client"),
            "-D",
            "-a",
            str(socket_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(500):
            if socket_path.exists():
                break
            time.sleep(0.01)
        assert socket_path.exists(), "ssh-agent did not start"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        monkeypatch.setenv("HOME", str(tmp_path))  # no default key files to fall back on
        options = {**sshd.options(sftp_root), "private_key": None, "use_agent": True}
        refused = _storage(**options)
        with pytest.raises(AccessDenied):
            refused.exists("x")  # the agent holds no key yet
        refused.close()
        subprocess.run(
            [require_executable("ssh-add", "apt-get install openssh-client"), str(sshd.key_path)],
            check=True,
            capture_output=True,
        )
        storage = _storage(**options)
        assert storage.save("agent.txt", ContentFile(b"by agent")) == "agent.txt"
        storage.close()
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_the_server_is_openssh_when_running_as_root(sshd: SSHServer) -> None:
    """As root (CI) the SFTP tests must run on OpenSSH's sshd, not the asyncssh stand-in."""
    import os
    import socket

    from tests.servers.sshd import STAND_INS, wants_openssh

    with socket.create_connection(("127.0.0.1", sshd.port), timeout=10) as conn:
        banner = conn.makefile("rb").readline()
    if os.geteuid() == 0:
        # Only an explicit STOWAGE_TEST_SSHD=asyncssh may choose the stand-in as root.
        assert wants_openssh() == (os.environ.get("STOWAGE_TEST_SSHD") != "asyncssh")
    if wants_openssh():
        assert sshd.kind == "openssh"
        assert banner.startswith(b"SSH-2.0-OpenSSH_"), banner
        assert sshd.port not in STAND_INS
    else:
        assert sshd.kind == "asyncssh"
        assert b"AsyncSSH" in banner, banner
        assert sshd.port in STAND_INS


def test_declaring_a_storage_does_not_import_asyncssh() -> None:
    """asyncssh loads at the first connection, not with settings or models."""
    script = textwrap.dedent(
        """
        import sys
        import django
        from django.conf import settings
        settings.configure()
        django.setup()
        from stowage import SFTPStorage
        storage = SFTPStorage(host="127.0.0.1", username="u", password="p", root_path="/srv")
        storage.driver
        loaded = [m for m in sys.modules if m.split(".")[0] == "asyncssh"]
        assert not loaded, loaded
        from stowage.drivers.sftp._asyncssh import asyncssh
        assert asyncssh.SFTPClient.__module__ == "asyncssh.sftp"  # the first lookup imports it
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_idle_connection_answers_the_servers_keep_alives(
    server_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocking calls run the event loop only while they wait: between calls,
    # stowage's serving thread answers the server, which asks every second
    # and drops a client that does not answer (OpenSSH within 5 s).
    connects: list[str] = []
    real_connect = asyncssh.connect

    async def counting_connect(*args: Any, **kwargs: Any) -> Any:
        connects.append("connect")
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(asyncssh, "connect", counting_connect)
    server = start_sshd(server_logs, client_alive=1)
    try:
        storage = _storage(**server.options(server.new_root()))
        storage.save("idle.txt", ContentFile(b"idle"))
        time.sleep(7)
        assert storage.open("idle.txt").read() == b"idle"
        assert connects == ["connect"]  # the first connection outlived the idle time
        storage.close()
    finally:
        server.stop()


def test_a_forked_child_opens_its_own_connection(both: dict[str, Any]) -> None:
    storage = _storage(**both)
    storage.save("parent.txt", ContentFile(b"parent"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if storage.open("parent.txt").read() == b"parent":
                code = 0 if storage.save("child.txt", ContentFile(b"child")) == "child.txt" else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.open("child.txt").read() == b"child"
    storage.close()


def test_sync_and_async_callers_share_the_connection_at_once(both: dict[str, Any]) -> None:
    # Threads run the shared event loop in turn while coroutines on another
    # loop hand their requests to it: reads ahead and writes in flight of
    # files of several chunks, all at once.
    storage = _storage(**both)
    content = {index: bytes([index]) * (1_500_000 + index * 7_919) for index in range(12)}

    def in_thread(index: int) -> bool:
        name = storage.save(f"mixed/t{index}.bin", ContentFile(content[index]))
        return storage.exists(name) and storage.open(name).read() == content[index]

    async def awaited(index: int) -> bool:
        name = await storage.asave(f"mixed/a{index}.bin", ContentFile(content[index]))
        async with storage.aopen(name) as handle:
            data = await handle.read()
        return await storage.aexists(name) and data == content[index]

    async def coroutines() -> list[bool]:
        return list(await asyncio.gather(*(awaited(index) for index in range(6, 12))))

    with ThreadPoolExecutor(7) as pool:
        threads = [pool.submit(in_thread, index) for index in range(6)]
        together = pool.submit(asyncio.run, coroutines())
        assert [future.result(timeout=120) for future in threads] == [True] * 6
        assert together.result(timeout=120) == [True] * 6
    assert sorted(storage.listdir("mixed")[1]) == sorted(
        [f"t{index}.bin" for index in range(6)] + [f"a{index}.bin" for index in range(6, 12)]
    )
    storage.close()
