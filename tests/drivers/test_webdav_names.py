"""Names holding URL delimiters on WebDAV: written under their own name, or refused.

wsgidav decodes a MOVE's Destination header before splitting it, so ``?``
and ``;`` there read as a query and parameters. Each case runs on a fresh
collection, and the disk behind it shows what the server really wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from stowage import WebDAVStorage
from stowage.drivers.retry import RetryPolicy
from stowage.drivers.webdav.destinations import DestinationCheck, delimiters
from stowage.drivers.webdav.flows import Flows
from stowage.drivers.webdav.steps import Call, Flow
from stowage.testing.url_contract import http_fetch
from tests.servers.wsgidav import WsgiDAV


@pytest.fixture
def collection(wsgidav_anonymous: WsgiDAV) -> tuple[WebDAVStorage, Path]:
    url = wsgidav_anonymous.collection()
    disk = wsgidav_anonymous.root / url.removeprefix(wsgidav_anonymous.url).strip("/")
    return WebDAVStorage(**wsgidav_anonymous.options(url)), disk


def files_on(disk: Path) -> list[str]:
    """Every file below ``disk`` but the create lock, as names relative to it."""
    return sorted(
        path.relative_to(disk).as_posix()
        for path in disk.rglob("*")
        if path.is_file() and path.name != ".stowage-lock"
    )


@pytest.mark.parametrize(
    "name",
    ["#", "a#b", "x;y/z", "%3F", "%41", "a%2Fb", "a b", "semi;colon/in/dir.txt"],
)
def test_names_wsgidav_reads_literally_are_written_as_named(
    collection: tuple[WebDAVStorage, Path], name: str
) -> None:
    storage, disk = collection
    assert storage.save(name, ContentFile(b"data")) == name
    assert files_on(disk) == [name]
    assert storage.open(name).read() == b"data"
    assert storage.copy(name, f"copy-{name}") == f"copy-{name}"
    assert files_on(disk) == sorted([name, f"copy-{name}"])


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [("?", "?"), ("a?b", "?"), ("a;b", ";"), ("dir?x/f.txt", "?"), ("d/e;f", ";")],
)
def test_names_wsgidav_would_misread_are_refused_and_nothing_is_written(
    collection: tuple[WebDAVStorage, Path], name: str, delimiter: str
) -> None:
    storage, disk = collection
    storage.save("a", ContentFile(b"keep me"))
    for _ in range(2):  # the second time from what the first probe learnt
        with pytest.raises(SuspiciousFileOperation, match=f"reads '\\{delimiter}'"):
            storage.save(name, ContentFile(b"data"))
    with pytest.raises(SuspiciousFileOperation, match="get_valid_name"):
        storage.copy("a", name)
    assert files_on(disk) == ["a"]
    assert storage.open("a").read() == b"keep me"
    assert [p for p in disk.iterdir() if p.is_dir()] == []


def test_urls_of_kept_names_serve_them(wsgidav_anonymous: WsgiDAV) -> None:
    """With ``base_url`` on the server itself, each kept name's URL serves that file."""
    url = wsgidav_anonymous.collection()
    storage = WebDAVStorage(base_url=url, **wsgidav_anonymous.options(url))
    names = ["h#x.txt", "plus+x.txt", "sp ace.txt", "p%3Fx.txt", "amp&x=1.txt", "ü é.txt"]
    for name in names:
        assert storage.save(f"named/{name}", ContentFile(name.encode())) == f"named/{name}"
    served = {name: http_fetch(storage.url(f"named/{name}")) for name in names}
    assert {name: (got.status, got.body) for name, got in served.items()} == {
        name: (200, name.encode()) for name in names
    }


def test_the_async_api_refuses_and_keeps_them_alike(
    collection: tuple[WebDAVStorage, Path],
) -> None:
    storage, disk = collection

    async def both() -> str:
        with pytest.raises(SuspiciousFileOperation, match="reads '\\?'"):
            await storage.asave("a?b", ContentFile(b"data"))
        return await storage.asave("a#b", ContentFile(b"data"))

    assert asyncio.run(both()) == "a#b"
    assert files_on(disk) == ["a#b"]


def test_the_probe_runs_once_per_delimiter(wsgidav_anonymous: WsgiDAV) -> None:
    storage = WebDAVStorage(**wsgidav_anonymous.options(wsgidav_anonymous.collection()))
    check = storage.driver._writes._destinations
    storage.save("plain.txt", ContentFile(b"x"))
    assert check.literal == {}
    storage.save("a#b", ContentFile(b"x"))
    assert check.literal == {"#": True}
    with pytest.raises(SuspiciousFileOperation):
        storage.save("c;d", ContentFile(b"x"))
    assert check.literal == {"#": True, ";": False}


def test_delimiters_are_looked_for_where_they_split_a_url() -> None:
    assert delimiters("a/b.txt") == []
    assert delimiters("a?b/c#d") == ["?", "#"]
    assert delimiters("x;y/z") == []  # parameters belong to the last part only
    assert delimiters("x/y;z") == [";"]


def drive(flow: Flow[Any], answer: Any) -> Iterator[Call]:
    """Run ``flow`` against ``answer(call)``, yielding each call it made."""
    try:
        step = next(flow)
        while True:
            assert isinstance(step, Call)
            yield step
            step = flow.send(answer(step))
    except StopIteration:
        return


def test_a_server_reading_destinations_literally_keeps_such_names() -> None:
    """Where a MOVE lands on the name it gave, names with delimiters are allowed."""
    flows = Flows("http://dav.invalid/root/", RetryPolicy())
    check = DestinationCheck(flows)
    made: set[str] = set()

    def literal_server(call: Call) -> httpx.Response:
        path = httpx.URL(call.url).raw_path.decode()
        if call.method == "PUT":
            made.add(path)
            return httpx.Response(201)
        if call.method == "MOVE":
            made.discard(path)
            made.add(httpx.URL(call.headers["Destination"]).raw_path.decode())
            return httpx.Response(201)
        if call.method == "PROPFIND":
            found = path in made
            body = f'<D:multistatus xmlns:D="DAV:"><D:response><D:href>{path}</D:href>'
            body += "<D:propstat><D:prop><D:resourcetype/></D:prop>"
            body += "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
            body += "</D:multistatus>"
            return httpx.Response(207, content=body.encode()) if found else httpx.Response(404)
        made.discard(path)
        return httpx.Response(204)

    calls = list(drive(check.check("a?b;c"), literal_server))
    assert check.literal == {"?": True, ";": True}
    assert [call.method for call in calls].count("MOVE") == 2
    assert made == set()  # the probes clean up after themselves
