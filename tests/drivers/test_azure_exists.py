"""Azure's exists() in one List Blobs call, with each credential stowage holds, on Azurite."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
from typing import Any
from urllib.parse import unquote

import obstore
import pytest

from stowage.drivers import _azure_listing
from stowage.drivers._azure_auth import SAS_VERSION, container_sas
from stowage.drivers.azure import AzureDriver, AzureOptions
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite


@pytest.fixture
def options(azurite: Azurite, azure_container: str) -> dict[str, Any]:
    return azurite.options(azure_container)


def _count_requests(driver: AzureDriver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the target of each listing the driver sends; fail any HEAD through obstore."""
    assert driver._lister is not None
    pool = driver._lister.pool
    sent: list[str] = []
    send = pool.send

    def counted(method: str, target: str, headers: dict[str, str], body: Any = None) -> Any:
        sent.append(f"{method} {target}")
        return send(method, target, headers, body)

    monkeypatch.setattr(pool, "send", counted)
    monkeypatch.setattr(obstore, "get", None)
    monkeypatch.setattr(obstore, "list_with_delimiter", None)
    return sent


_LAYOUT = ("d/sub/f.txt", "d/name-2", "d/name.bak", "d/name-x/g.txt", "d/name", "d/a b#%é.txt")
_ANSWERS = (
    ("d", True),
    ("d/sub", True),
    ("d/name", True),
    ("d/name-x", True),
    ("d/nam", False),
    ("d/name-", False),
    ("d/a b#%é.txt", True),
    ("d/a b", False),
    ("missing", False),
)


@pytest.mark.parametrize("by_listing", [True, False])
def test_exists_either_way(options: dict[str, Any], by_listing: bool) -> None:
    """One listing, or a HEAD then a listing of key/: the same answers, names sorting around."""
    driver = AzureDriver(AzureOptions(**options, exists_by_listing=by_listing))
    assert (driver._lister is not None) is by_listing
    for key in _LAYOUT:
        driver.put(key, io.BytesIO(b"x"), size=1)
    for key, expected in _ANSWERS:
        assert driver.exists(key) is expected, key
        assert asyncio.run(driver.aexists(key)) is expected, key


def test_exists_takes_one_request(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    driver = AzureDriver(AzureOptions(**options))
    driver.put("d/f.txt", io.BytesIO(b"x"), size=1)
    sent = _count_requests(driver, monkeypatch)
    for key, expected in (("d", True), ("d/f.txt", True), ("d/missing", False)):
        sent.clear()
        assert driver.exists(key) is expected
        assert len(sent) == 1
        assert f"prefix={key.replace('/', '%2F')}&delimiter=%2F" in sent[0]


def test_a_long_run_of_siblings_is_read_page_by_page(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    """Siblings sorting before ``name/`` fill pages until one reaches past it."""
    client = azurite.client().get_container_client(options["azure_container"])
    for i in range(7):
        client.upload_blob(f"d/name-{i}", b"x")
    client.upload_blob("d/name/inner.txt", b"x")
    driver = AzureDriver(AzureOptions(**options))
    sent = _count_requests(driver, monkeypatch)
    assert driver._lister is not None
    driver._lister.page_size = 3  # Azurite's pages hold 5,000
    assert driver.exists("d/name")
    assert len(sent) == 3
    assert "marker=" in sent[1]


def _by_sas_token(options: dict[str, Any], azurite: Azurite, **permissions: bool) -> AzureDriver:
    """Return a driver holding only a container SAS token granting ``permissions``.

    The container holds ``d/f.txt``.
    """
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = options["azure_container"]
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(**permissions),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    azurite.client().get_container_client(container).upload_blob("d/f.txt", b"x")
    keyless = {k: v for k, v in options.items() if k != "account_key"}
    # A token is taken with or without its leading "?", as Azure's portal gives it.
    return AzureDriver(AzureOptions(**keyless, sas_token="?" + sas))


def test_a_sas_token_without_list_permission_falls_back_once(
    options: dict[str, Any],
    azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = _by_sas_token(options, azurite, read=True, write=True, create=True)
    assert driver._lister is not None
    pages: list[str] = []
    page = _azure_listing.BlobLister._page

    def recorded(self: Any, prefix: str, marker: str | None, what: str) -> Any:
        pages.append(prefix)
        return page(self, prefix, marker, what)

    monkeypatch.setattr(_azure_listing.BlobLister, "_page", recorded)
    with caplog.at_level(logging.WARNING, logger="stowage"):
        assert driver.exists("d/f.txt")
    assert pages == ["d/f.txt"]
    assert "exists_by_listing=False" in caplog.text
    assert driver.exists("d/f.txt")
    assert asyncio.run(driver.aexists("d/f.txt"))
    assert pages == ["d/f.txt"]  # refused once, then a HEAD


def test_a_sas_token_with_list_permission_lists(
    options: dict[str, Any], azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = _by_sas_token(options, azurite, read=True, list=True)
    sent = _count_requests(driver, monkeypatch)
    assert driver.exists("d")
    assert not driver.exists("d/f")
    assert len(sent) == 2


def test_the_listing_sas_matches_generate_container_sas(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.storage.blob._shared_access_signature as sdk_sas
    from azure.storage.blob import generate_container_sas

    # The SDK writes its own newest version into the string to sign; use ours.
    monkeypatch.setattr(sdk_sas, "X_MS_VERSION", SAS_VERSION)
    expiry = "2031-05-06T07:08:09Z"
    ours = container_sas(
        account=ACCOUNT, container="box", account_key=ACCOUNT_KEY, permission="l", expiry=expiry
    )
    theirs = generate_container_sas(
        ACCOUNT, "box", account_key=ACCOUNT_KEY, permission="l", expiry=expiry
    )

    def fields(query: str) -> dict[str, str]:
        return {name: unquote(value) for name, value in (p.split("=", 1) for p in query.split("&"))}

    assert fields(theirs)["sv"] == SAS_VERSION
    assert fields(ours)["sig"] == fields(theirs)["sig"]
    assert fields(ours)["sr"] == "c"


def test_the_listing_sas_is_renewed_before_it_ends() -> None:
    now = [1_000_000.0]
    authorize = _azure_listing.sas_from_account_key(ACCOUNT, "box", ACCOUNT_KEY, lambda: now[0])
    first, headers = authorize()
    assert headers == {}
    now[0] += 40 * 60
    assert authorize()[0] == first  # still three quarters of an hour ahead of its end
    now[0] += 6 * 60
    assert authorize()[0] != first


def test_names_the_service_percent_encodes_are_read_back() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>'
        b"<Blob><Name>plain</Name></Blob>"
        b'<Blob><Name Encoded="true">odd%01name</Name></Blob>'
        b"<BlobPrefix><Name>dir/</Name></BlobPrefix>"
        b"</Blobs><NextMarker>next-page</NextMarker></EnumerationResults>"
    )
    names, prefixes, marker = _azure_listing._read_page(body)
    assert list(names) == ["plain", "odd\x01name"]
    assert list(prefixes) == ["dir/"]
    assert marker == "next-page"
    assert (
        _azure_listing._read_page(
            b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
        )[2]
        is None
    )
