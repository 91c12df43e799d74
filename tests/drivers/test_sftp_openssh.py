"""The SFTP driver with client="openssh": the whole contract, and what differs on ssh.

The tests of test_sftp.py that take ``client`` or ``both`` run on this client too.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from stowage import SFTPStorage
from stowage.drivers.sftp import SFTPDriver, SFTPOptions
from stowage.drivers.sftp import process as stowage_process
from stowage.exceptions import AccessDenied
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
from tests.servers.sshd import SSHServer

BASE_URL = "https://files.example.com/media/"


@pytest.fixture
def options(sftp_options: dict[str, Any]) -> dict[str, Any]:
    return {**sftp_options, "client": "openssh"}


def _storage(**options: Any) -> SFTPStorage:
    return SFTPStorage(**{"client": "openssh", **options})


class TestOpenSSHDriver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> Any:
        driver = SFTPDriver(SFTPOptions(**options))
        yield driver
        driver.close()


# The adapter above the driver is the same for both clients, and runs this contract
# over asyncssh on every Python and Django; what is ssh's own (the driver contract above,
# test_sftp_wire.py) runs on every combination, this class on one.
@pytest.mark.once
class TestOpenSSHStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    hostile_examples = 60

    @pytest.fixture
    def storage(self, sshd: SSHServer, sftp_root: str) -> Any:
        # The key given as text, so the kit can look for it where it must not be.
        self.secret_values = (sshd.key_text,)
        storage = _storage(
            location="media",
            base_url=BASE_URL,
            **{**sshd.options(sftp_root), "private_key": sshd.key_text},
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
        root = Path(sftp_root)
        return Reach(storage.driver, root=root.parent, prefix=root.name)


def test_the_openssh_client_never_imports_asyncssh(options: dict[str, Any]) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import django
        from django.conf import settings
        settings.configure()
        django.setup()
        from django.core.files.base import ContentFile
        from stowage import SFTPStorage
        storage = SFTPStorage(**{options!r})
        storage.save("a.txt", ContentFile(b"a"))
        assert storage.exists("a.txt") and not storage.exists("missing")
        storage.delete("a.txt")
        storage.close()
        print("asyncssh" in sys.modules, "paramiko" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"password": "pw-1e5"}, "'password'"),
        ({"params": {"password": "pw-1e5"}}, r"params\['password'\]"),
        ({"private_key_passphrase": "pp-1e5"}, "'private_key_passphrase'"),
        ({"client": "putty"}, "'client'"),
    ],
)
def test_what_ssh_cannot_do_is_refused_naming_the_option(
    options: dict[str, Any], bad: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment) as refused:
        _storage(**{**options, **bad})
    assert "1e5" not in str(refused.value)


def test_a_missing_ssh_program_says_what_to_install(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImproperlyConfigured, match=r"'client'.*openssh-client"):
        _storage(**options)


def test_unknown_host_key_accepted_and_pinned_when_asked(
    sshd: SSHServer, sftp_root: str, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    storage = _storage(
        **{**sshd.options(sftp_root), "known_hosts": str(empty), "accept_unknown_host_keys": True}
    )
    storage.save("a.txt", ContentFile(b"trusted on first use"))
    assert empty.read_text() == ""  # the user's file is never written
    launcher = storage.driver._connection._launcher  # type: ignore[attr-defined]
    pinned = Path(launcher._directory, "known_hosts").read_text()
    assert sshd.host_key_line.split()[2] in pinned
    assert sshd.drop_connections() > 0
    assert storage.open("a.txt").read() == b"trusted on first use"
    storage.close()


def test_a_key_the_server_does_not_know_is_refused(
    sshd: SSHServer, sftp_root: str, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        capture_output=True,
    )
    storage = _storage(**{**sshd.options(sftp_root), "private_key": str(stranger)})
    with pytest.raises(AccessDenied, match="refused the login") as refused:
        storage.exists("x")
    assert isinstance(refused.value, PermissionError)
    storage.close()


def test_the_key_file_lives_with_the_storage_only(sshd: SSHServer, sftp_root: str) -> None:
    storage = _storage(**{**sshd.options(sftp_root), "private_key": sshd.key_text})
    storage.save("k.txt", ContentFile(b"k"))
    launcher = storage.driver._connection._launcher  # type: ignore[attr-defined]
    key = Path(launcher._directory, "key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert key.read_text().strip() == sshd.key_text.strip()
    command = " ".join(launcher.command())
    assert sshd.key_text.strip().splitlines()[1] not in command
    storage.close()
    del storage, launcher
    import gc

    gc.collect()
    assert not key.parent.exists()


def test_threads_share_one_ssh_process(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stowage.drivers.sftp.wire import WireClient

    starts = []
    real_start = WireClient.start.__func__  # type: ignore[attr-defined]

    async def counting_start(cls: type[WireClient], *args: Any, **kwargs: Any) -> WireClient:
        starts.append(args)
        client: WireClient = await real_start(cls, *args, **kwargs)
        return client

    monkeypatch.setattr(WireClient, "start", classmethod(counting_start))
    storage = _storage(**options)
    barrier = threading.Barrier(8)

    def work(index: int) -> bytes:
        barrier.wait()
        name = storage.save(f"t/{index}.bin", ContentFile(bytes([index]) * 300_000))
        return bytes(storage.open(name).read())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert results == [bytes([i]) * 300_000 for i in range(8)]
    assert len(starts) == 1
    storage.close()


def test_inspecting_a_name_is_answered_on_the_calling_thread(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # exists(), size() and the like send their STAT straight into ssh's pipe
    # and read the answer there, without a turn of the event loop.
    from stowage.drivers.sftp.wire import WireClient

    storage = _storage(**options)
    storage.save("d/a.txt", ContentFile(b"abc"))

    async def through_the_loop(*args: Any) -> Any:
        raise AssertionError("the STAT went through the event loop")

    monkeypatch.setattr(WireClient, "stat", through_the_loop)
    asked = []
    real_ask = stowage_process.SFTPProcess.ask

    def counting_ask(*args: Any) -> Any:
        asked.append(threading.current_thread())
        return real_ask(*args)

    monkeypatch.setattr(stowage_process.SFTPProcess, "ask", counting_ask)
    assert storage.exists("d/a.txt")
    assert storage.exists("d")
    assert not storage.exists("d/missing.txt")
    assert storage.size("d/a.txt") == 3
    assert storage.driver.is_dir("d")
    assert not storage.driver.is_dir("d/a.txt")
    with pytest.raises(FileNotFoundError):
        storage.size("d/missing.txt")
    assert asked == [threading.current_thread()] * 7  # one STAT per call
    storage.close()


def test_the_command_offers_the_agent_beside_a_key_only_when_asked(
    options: dict[str, Any], tmp_path: Path
) -> None:
    from stowage.drivers.sftp.openssh import OpenSSH
    from stowage.drivers.sftp.options import Login

    def command(**changes: Any) -> list[str]:
        sftp_options = SFTPOptions(**{**options, **changes})
        launcher = OpenSSH(sftp_options, Login.from_options(sftp_options))
        try:
            return launcher.command()
        finally:
            launcher.cleanup()

    alone = command()
    assert "IdentitiesOnly=yes" in alone
    assert "IdentityAgent=none" in alone
    with_agent = command(use_agent=True)
    assert "IdentitiesOnly=yes" not in with_agent
    assert "IdentityAgent=none" not in with_agent
    # Without a key ssh offers its default key files, unless params say not to.
    keyless = {"private_key": None, "use_agent": True}
    assert not any(arg.startswith("IdentityFile=") for arg in command(**keyless))
    agent_only = command(**keyless, params={"look_for_keys": False})
    assert "IdentityFile=none" in agent_only
    assert "IdentityAgent=none" not in agent_only
    quoted = tmp_path / 'a"b'
    with pytest.raises(ImproperlyConfigured, match="'private_key'"):
        command(private_key=str(quoted))
