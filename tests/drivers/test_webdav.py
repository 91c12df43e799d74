"""The WebDAV driver on wsgidav: the kit (anonymous, basic, digest), interop, errors, options."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from stowage import WebDAVStorage
from stowage.drivers.base import ObjectInfo
from stowage.drivers.webdav import WebDAVDriver, WebDAVOptions
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
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
from tests.faults.proxy import Fault, FaultProxy
from tests.servers._process import ServerProcess, free_port
from tests.servers.wsgidav import PASSWORD, WsgiDAV

BASE_URL = "https://files.example.com/dav/"
BIG = bytes(range(256)) * 1200


@pytest.fixture(params=["anonymous", "basic", "digest"])
def server(request: pytest.FixtureRequest) -> WsgiDAV:
    name = "wsgidav_anonymous" if request.param == "anonymous" else "wsgidav_auth"
    dav: WsgiDAV = request.getfixturevalue(name)
    return dav


@pytest.fixture
def options(request: pytest.FixtureRequest, server: WsgiDAV) -> dict[str, Any]:
    extra = {"auth": "digest"} if request.node.callspec.params["server"] == "digest" else {}
    return server.options(server.collection(), **extra)


@pytest.fixture
def anonymous(wsgidav_anonymous: WsgiDAV) -> dict[str, Any]:
    return wsgidav_anonymous.options(wsgidav_anonymous.collection())


@pytest.fixture
def basic(wsgidav_auth: WsgiDAV) -> dict[str, Any]:
    return wsgidav_auth.options(wsgidav_auth.collection())


class TestWebDAVDriver(DriverContract):
    # PROPFIND answers a whole collection at once: there are no pages to span, and
    # 300 keys make a multistatus answer as large as any page of a paged service.
    many_keys = 300

    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> WebDAVDriver:
        return WebDAVDriver(WebDAVOptions(**options))


class TestWebDAVStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    secret_values = (PASSWORD,)
    hostile_examples = 40

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> WebDAVStorage:
        return WebDAVStorage(location="media", base_url=BASE_URL, **options)

    @pytest.fixture
    def broken_storage(self, options: dict[str, Any]) -> WebDAVStorage:
        closed = f"http://127.0.0.1:{free_port()}/dav/"
        return WebDAVStorage(location="media", base_url=BASE_URL, **{**options, "url": closed})

    @pytest.fixture
    def hostile_reach(
        self, storage: WebDAVStorage, server: WsgiDAV, options: dict[str, Any]
    ) -> Reach:
        # The whole of the server's root directory, the collection one level down.
        prefix = options["url"].removeprefix(server.url).strip("/")
        return Reach(storage.driver, root=server.root, prefix=prefix)


def _on_disk(server: WsgiDAV, url: str) -> Path:
    return server.root / url.removeprefix(server.url).strip("/")


# -- interop ------------------------------------------------------------------------


def test_plain_http_writes_stowage_reads(wsgidav_auth: WsgiDAV, basic: dict[str, Any]) -> None:
    url = basic["url"]
    auth = wsgidav_auth.auth()
    assert httpx.request("MKCOL", f"{url}in/", auth=auth).status_code == 201
    put = httpx.put(f"{url}in/data%20file.json", content=b'{"a": 1}', auth=auth)
    assert put.status_code == 201
    storage = WebDAVStorage(**basic)
    assert storage.open("in/data file.json").read() == b'{"a": 1}'
    assert storage.listdir("in") == ([], ["data file.json"])
    assert storage.size("in/data file.json") == 8
    assert storage.driver.head("in/data file.json").content_type == "application/json"


def test_stowage_writes_plain_get_reads(
    wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]
) -> None:
    storage = WebDAVStorage(**anonymous)
    name = storage.save("out/ünï cødé.txt", ContentFile("héllo".encode()))
    with urllib.request.urlopen(anonymous["url"] + "out/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9.txt") as r:
        assert r.read() == "héllo".encode()
    assert (_on_disk(wsgidav_anonymous, anonymous["url"]) / name).read_bytes() == "héllo".encode()


def test_partial_uploads_are_never_visible(
    wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]
) -> None:
    driver = WebDAVDriver(WebDAVOptions(**anonymous))
    driver.put("keep.bin", io.BytesIO(b"old"))

    class Broken:
        given = 0

        def read(self, size: int = -1) -> bytes:
            if self.given > 2 * 1024 * 1024:
                raise OSError("the source broke mid-stream")
            self.given += size
            return b"n" * size

    for key in ("keep.bin", "new.bin"):
        with pytest.raises(OSError, match="mid-stream"):
            driver.put(key, Broken())
    directory = _on_disk(wsgidav_anonymous, anonymous["url"])
    assert (directory / "keep.bin").read_bytes() == b"old"
    visible = [p.name for p in directory.iterdir() if not p.name.startswith(".stowage-")]
    assert visible == ["keep.bin"]


def test_why_uploads_are_staged(wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]) -> None:
    """A plain PUT whose body breaks leaves a partial file on wsgidav (see the driver's docs)."""

    def broken() -> Any:
        yield b"p" * 300_000
        raise OSError("the source broke mid-stream")

    with pytest.raises(OSError, match="mid-stream"):
        httpx.put(anonymous["url"] + "plain.bin", content=broken())
    partial = _on_disk(wsgidav_anonymous, anonymous["url"]) / "plain.bin"
    for _ in range(100):  # the server notices the broken body a moment later
        if partial.exists() and partial.stat().st_size:
            break
        time.sleep(0.05)
    assert 0 < partial.stat().st_size < 400_000


# -- atomic create --------------------------------------------------------------------


def _race(driver: WebDAVDriver, key: str, contenders: int) -> dict[int, str]:
    """Create ``key`` from ``contenders`` threads released at once; say who won."""
    barrier = threading.Barrier(contenders)
    outcome: dict[int, str] = {}

    def create(index: int) -> None:
        barrier.wait()
        try:
            driver.put(key, io.BytesIO(b"%d" % index), if_absent=True)
            outcome[index] = "won"
        except AlreadyExists:
            outcome[index] = "lost"

    threads = [threading.Thread(target=create, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_concurrent_creates_of_one_name_have_one_winner(anonymous: dict[str, Any]) -> None:
    driver = WebDAVDriver(WebDAVOptions(**anonymous))
    for round_ in range(15):
        key = f"race/{round_}.txt"
        outcome = _race(driver, key, 6)
        winners = [i for i, result in outcome.items() if result == "won"]
        assert len(outcome) == 6
        assert len(winners) == 1
        assert b"".join(driver.get(key)) == b"%d" % winners[0]


def test_second_create_fails_and_keeps_the_first(basic: dict[str, Any]) -> None:
    driver = WebDAVDriver(WebDAVOptions(**basic, auth="digest"))
    driver.put("c/once.txt", io.BytesIO(b"first"), if_absent=True)
    with pytest.raises(AlreadyExists):
        driver.put("c/once.txt", io.BytesIO(b"second"), if_absent=True)
    assert b"".join(driver.get("c/once.txt")) == b"first"


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_wrong_password_is_a_clear_error(basic: dict[str, Any], scheme: str) -> None:
    wrong = "not-the-Password-42"
    storage = WebDAVStorage(**{**basic, "password": wrong, "auth": scheme})
    for operation in (
        lambda: storage.save("a.txt", ContentFile(b"a")),
        lambda: storage.exists("a.txt"),
        lambda: storage.open("a.txt").read(),
        lambda: storage.listdir(""),
    ):
        with pytest.raises(AccessDenied, match="credentials") as caught:
            operation()
        assert isinstance(caught.value, PermissionError)
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        assert wrong not in str(caught.value)
        assert PASSWORD not in str(caught.value)
    assert wrong not in repr(storage) + repr(storage.driver) + repr(storage.driver.options)


def test_missing_credentials_are_refused(wsgidav_auth: WsgiDAV, basic: dict[str, Any]) -> None:
    storage = WebDAVStorage(url=basic["url"])
    with pytest.raises(AccessDenied, match="401"):
        storage.listdir("")


def test_refused_connection(tmp_path: Path) -> None:
    storage = WebDAVStorage(url=f"http://127.0.0.1:{free_port()}/dav/", timeout=5)
    with pytest.raises(ServiceUnavailable, match="cannot connect") as caught:
        storage.save("a.txt", ContentFile(b"a"))
    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    with pytest.raises(ConnectionError):
        storage.exists("a.txt")


def test_insufficient_storage_and_server_errors(
    wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]
) -> None:
    proxy = FaultProxy(wsgidav_anonymous.port)
    try:
        url = anonymous["url"].replace(f":{wsgidav_anonymous.port}/", f":{proxy.port}/")
        storage = WebDAVStorage(url=url)
        proxy.inject(Fault("status", status=507))
        with pytest.raises(ServiceError, match="no space left") as caught:
            storage.save("full.txt", ContentFile(b"x"))
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        proxy.inject(Fault("status", status=503))
        fresh = WebDAVStorage(
            url=url, max_retries=0
        )  # a new client: the fault hits its first connection
        with pytest.raises(ServiceUnavailable, match="503"):
            fresh.exists("full.txt")
        assert not fresh.exists("full.txt")
    finally:
        proxy.close()


def _read_all(driver: WebDAVDriver, key: str, twin: str) -> bytes:
    """Read ``key`` whole with ``get`` ("sync") or ``aget`` ("async")."""
    if twin == "sync":
        return b"".join(driver.get(key))

    async def read() -> bytes:
        download = await driver.aget(key)
        try:
            return b"".join([chunk async for chunk in download])
        finally:
            await download.aclose()

    return asyncio.run(read())


@pytest.fixture
def big_behind_proxy(
    wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]
) -> Iterator[tuple[str, FaultProxy]]:
    """Store big.bin and return the collection's URL through a fault proxy, and the proxy."""
    WebDAVDriver(WebDAVOptions(**anonymous)).put("big.bin", io.BytesIO(BIG))
    proxy = FaultProxy(wsgidav_anonymous.port)
    try:
        yield anonymous["url"].replace(f":{wsgidav_anonymous.port}/", f":{proxy.port}/"), proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("fault", ["truncate", "reset_after"])
def test_read_cut_midway_is_resumed(
    big_behind_proxy: tuple[str, FaultProxy], fault: str, twin: str
) -> None:
    url, proxy = big_behind_proxy
    driver = WebDAVDriver(WebDAVOptions(url=url))
    proxy.inject(Fault(fault, after=100_000))
    assert _read_all(driver, "big.bin", twin) == BIG
    assert proxy.injected == [fault]


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_truncated_read_without_retries_is_an_error(
    big_behind_proxy: tuple[str, FaultProxy], twin: str
) -> None:
    url, proxy = big_behind_proxy
    driver = WebDAVDriver(WebDAVOptions(url=url, max_retries=0))
    proxy.inject(Fault("truncate", after=100_000))
    with pytest.raises(IncompleteRead):
        _read_all(driver, "big.bin", twin)


def _put(driver: WebDAVDriver, key: str, data: bytes, twin: str) -> ObjectInfo:
    """Store ``data`` under ``key`` with ``put`` ("sync") or ``aput`` ("async")."""
    if twin == "sync":
        return driver.put(key, io.BytesIO(data))
    return asyncio.run(driver.aput(key, io.BytesIO(data)))


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_refused_upload_leaves_nothing_on_its_connection(
    anonymous: dict[str, Any], twin: str
) -> None:
    """wsgidav refuses a PUT below a file without reading its chunked body, which cheroot
    then takes for the next request on that connection (400 Bad Request), now and then."""
    driver = WebDAVDriver(WebDAVOptions(**anonymous))
    driver.put("a", io.BytesIO(b"file"))
    for _ in range(100):
        with pytest.raises(ServiceError, match="not a directory"):
            _put(driver, "a/b", b"below", twin)
    assert driver.head("a").size == 4


# -- reads from a server that ignores Range ----------------------------------------------


def test_a_server_ignoring_range_is_skipped_through(server_logs: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    (tmp_path / "plain.bin").write_bytes(data)
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory"]
    process = ServerProcess(
        "http-server-no-range", [*argv, str(tmp_path), str(port)], port=port, log_dir=server_logs
    )
    process.wait_ready()
    try:
        driver = WebDAVDriver(WebDAVOptions(url=f"http://127.0.0.1:{port}/"))
        download = driver.get("plain.bin", start=1000, end=1010)
        assert download.info.size == len(data)
        assert b"".join(download) == data[1000:1010]
        assert b"".join(driver.get("plain.bin", start=25_000)) == data[25_000:]
        assert b"".join(driver.get("plain.bin", start=30_000)) == b""
    finally:
        process.stop()


# -- urls -----------------------------------------------------------------------------


def test_url_with_base_url(anonymous: dict[str, Any]) -> None:
    storage = WebDAVStorage(location="media", base_url="https://cdn.example.com/files", **anonymous)
    assert storage.url("a b/ü.txt") == "https://cdn.example.com/files/media/a%20b/%C3%BC.txt"
    assert storage.url(None) == "https://cdn.example.com/files/media/"


def test_url_without_base_url_is_refused(anonymous: dict[str, Any]) -> None:
    storage = WebDAVStorage(**anonymous)
    with pytest.raises(UnsupportedOperation, match="'base_url'"):
        storage.url("a.txt")
    with pytest.raises(UnsupportedOperation):
        storage.url("a.txt", expire=60)


def test_public_url_serves_the_file(anonymous: dict[str, Any]) -> None:
    storage = WebDAVStorage(base_url=anonymous["url"], **anonymous)
    name = storage.save("pub/x y.txt", ContentFile(b"public"))
    with urllib.request.urlopen(storage.url(name)) as response:
        assert response.read() == b"public"


# -- server-side copy and directories ---------------------------------------------------


def test_copy_and_move_stay_on_the_server(
    wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]
) -> None:
    storage = WebDAVStorage(**anonymous)
    storage.save("src.txt", ContentFile(b"copy me"))
    assert storage.copy("src.txt", "a/b/dst.txt") == "a/b/dst.txt"
    with pytest.raises(AlreadyExists):
        storage.copy("src.txt", "a/b/dst.txt")
    storage.move("src.txt", "moved.txt")
    assert storage.open("a/b/dst.txt").read() == b"copy me"
    assert storage.listdir("") == (["a"], ["moved.txt"])


def test_directories_are_collections(wsgidav_anonymous: WsgiDAV, anonymous: dict[str, Any]) -> None:
    storage = WebDAVStorage(**anonymous)
    storage.save("d/e/f.txt", ContentFile(b"f"))
    directory = _on_disk(wsgidav_anonymous, anonymous["url"])
    assert (directory / "d" / "e").is_dir()
    storage.delete("d")  # holds a file: not deleted
    assert storage.exists("d/e/f.txt")
    with pytest.raises(FileNotFoundError):
        storage.size("d")
    storage.delete("d/e/f.txt")
    assert storage.listdir("d") == (["e"], [])
    storage.delete("d/e")
    assert not storage.exists("d/e")


# -- options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"url": ""}, "'url'"),
        ({"url": "ftp://127.0.0.1/"}, "'url'"),
        ({"url": "http://alice:secret@127.0.0.1/"}, "'url'"),
        ({"base_url": "http://u:p@cdn.example.com/"}, "'base_url'"),
        ({"auth": "ntlm"}, "'auth'"),
        ({"auth": "digest"}, "'auth'"),
        ({"password": "x"}, "'password'"),
        ({"verify": "/no/such/bundle.pem"}, "'verify'"),
        ({"timeout": 0}, "'timeout'"),
        ({"headers": {"X-A": 1}}, "'headers'"),
        ({"hostname": "x"}, "'hostname'"),
    ],
)
def test_bad_options_name_themselves(bad: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment) as caught:
        WebDAVStorage(**{"url": "http://127.0.0.1:9/dav/", **bad}).exists("x")
    assert "secret" not in str(caught.value)


def test_extra_headers_are_sent(anonymous: dict[str, Any]) -> None:
    seen: list[str] = []
    tenant = "tenant-header-value"  # cannot occur in the random test prefix
    storage = WebDAVStorage(headers={"X-Tenant": tenant}, **anonymous)
    client = storage.driver.client  # type: ignore[attr-defined]
    client.event_hooks["request"].append(lambda r: seen.append(r.headers.get("X-Tenant", "")))
    storage.save("h.txt", ContentFile(b"h"))
    assert seen
    assert set(seen) == {tenant}
    assert tenant not in repr(storage.deconstruct())
