"""The docs' worked example, a driver for an HTTP asset API, under the conformance kit.

The driver is ``docs/examples/asset_driver.py``, the very file the "Write your
own backend" page includes; the API is ``tests/servers/asset_api.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from stowage import Storage
from stowage.exceptions import ConfigurationError, NotFound, ServiceUnavailable
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)
from tests.faults.proxy import Fault, FaultProxy
from tests.servers._process import free_port
from tests.servers.asset_api import AssetAPI

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
if str(EXAMPLES) not in sys.path:
    # Importable as the docs say a project would have it: "asset_driver:AssetDriver".
    sys.path.insert(0, str(EXAMPLES))

from asset_driver import AssetDriver, AssetOptions  # noqa: E402

DRIVER = "asset_driver:AssetDriver"
#: The token of the storage tests' library; each test works under its own location.
TOKEN = "docs-example-token-0c3f9a"


class TestAssetDriver(DriverContract):
    @pytest.fixture
    def driver(self, asset_api: AssetAPI) -> AssetDriver:
        return AssetDriver(AssetOptions(**asset_api.options()))


class TestAssetStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    secret_values = (TOKEN,)
    hostile_examples = 60

    @pytest.fixture
    def storage(self, asset_api: AssetAPI, tmp_path: Path) -> Storage:
        location = f"t/{tmp_path.name}"
        return Storage(
            driver=DRIVER, location=location, base_url="/media/", **asset_api.options(TOKEN)
        )

    @pytest.fixture
    def broken_storage(self) -> Storage:
        closed = f"http://127.0.0.1:{free_port()}/"
        return Storage(driver=DRIVER, api_url=closed, token=TOKEN, base_url="/media/")


def test_options_are_checked_and_named() -> None:
    with pytest.raises(ConfigurationError, match="'api_url'"):
        Storage(driver=DRIVER, api_url="ftp://example.com/", token="t").driver  # noqa: B018
    with pytest.raises(ConfigurationError, match="'token'"):
        Storage(driver=DRIVER, api_url="http://127.0.0.1:9/").driver  # noqa: B018
    with pytest.raises(ConfigurationError, match="'timeout'"):
        Storage(driver=DRIVER, api_url="http://127.0.0.1:9/", token="t", timeout="slow")


def test_token_falls_back_to_the_environment(
    asset_api: AssetAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = asset_api.options()["token"]
    monkeypatch.setenv("ASSET_API_TOKEN", token)
    storage = Storage(driver=DRIVER, api_url=asset_api.url)
    storage.save("env.txt", ContentFile(b"from the environment"))
    named = Storage(driver=DRIVER, **asset_api.options(token))
    assert named.open("env.txt").read() == b"from the environment"
    assert token not in repr(storage)
    assert "token" not in storage.deconstruct()[2]  # type: ignore[attr-defined]


def test_missing_asset_and_unreachable_api(asset_api: AssetAPI) -> None:
    storage = Storage(driver=DRIVER, **asset_api.options())
    with pytest.raises(NotFound, match=r"missing\.txt"):
        storage.size("missing.txt")
    closed = Storage(driver=DRIVER, api_url=f"http://127.0.0.1:{free_port()}/", token="t")
    with pytest.raises(ServiceUnavailable, match="cannot reach the asset API"):
        closed.exists("anything.txt")


def test_reads_are_retried_and_a_streamed_write_is_not(asset_api: AssetAPI) -> None:
    """The example's retries come from the kit: a 503 passes for a GET, not for a PUT."""
    port = int(asset_api.url.rstrip("/").rsplit(":", 1)[1])
    proxy = FaultProxy(port)
    try:
        options = {**asset_api.options(), "api_url": f"http://127.0.0.1:{proxy.port}/"}
        storage = Storage(driver=DRIVER, **options)
        storage.save("kept.txt", ContentFile(b"kept"))
        proxy.inject(Fault("status", status=503))
        assert storage.open("kept.txt").read() == b"kept"  # answered on the second try
        assert proxy.injected == ["status"]
        proxy.inject(Fault("status", status=503))
        with pytest.raises(ServiceUnavailable):
            storage.save("lost.txt", ContentFile(b"body sent once"))
        assert not storage.exists("lost.txt")
    finally:
        proxy.close()


def test_the_example_stays_under_150_lines() -> None:
    lines = (EXAMPLES / "asset_driver.py").read_text().splitlines()
    assert len(lines) < 150
