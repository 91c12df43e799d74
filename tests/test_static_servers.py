"""collectstatic of django.contrib.admin to real object stores, then the login page over HTTP."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import Client, override_settings

from stowage.drivers.base import Driver
from tests.servers.moto import MotoServer

pytestmark = pytest.mark.django_db


def _public_s3(request: pytest.FixtureRequest) -> dict[str, Any]:
    server: MotoServer = request.getfixturevalue("s3_server")
    bucket = server.create_bucket()
    server.let_anyone_read(bucket)
    return {"driver": "s3", **server.options(bucket)}


def _public_gcs(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("fake_gcs")
    bucket = server.create_bucket()
    return {
        "driver": "gcs",
        "bucket_name": bucket,
        "api_endpoint": server.url,
        "anonymous": True,
    }


def _public_azure(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("azurite")
    container = server.create_container()
    server.client().get_container_client(container).set_container_access_policy(
        signed_identifiers={}, public_access="blob"
    )
    return {"driver": "azure", **server.options(container)}


BACKENDS = {"s3": _public_s3, "gcs": _public_gcs, "azure": _public_azure}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return BACKENDS[request.param](request)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "site").mkdir(parents=True)
    (root / "site" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "site" / "site.css").write_text('h1 { background: url("logo.svg"); }\n')
    return root


class PutCounter:
    """Count the uploads every driver makes while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, driver_class: type[Driver]) -> None:
        self.keys: list[str] = []
        real = driver_class.put

        def put(driver: Driver, key: str, stream: Any, **kwargs: Any) -> Any:
            self.keys.append(key)
            return real(driver, key, stream, **kwargs)

        monkeypatch.setattr(driver_class, "put", put)


def _collect() -> None:
    storages._storages.pop("staticfiles", None)
    staticfiles_storage._setup()
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def configured(backend: dict[str, Any], sources: Path) -> Iterator[dict[str, Any]]:
    with override_settings(
        STATICFILES_DIRS=[str(sources)],
        STORAGES={
            "default": {"BACKEND": "stowage.MemoryStorage"},
            "staticfiles": {"BACKEND": "stowage.ManifestStaticStorage", "OPTIONS": backend},
        },
    ):
        yield backend
    storages._storages.pop("staticfiles", None)
    staticfiles_storage._wrapped = None  # type: ignore[assignment]
    staticfiles_storage._setup()


def _asset_urls(html: str) -> list[str]:
    return sorted(set(re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', html)))


def test_admin_login_page_assets_resolve_over_http(
    configured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _collect()
    html = Client().get("/admin/login/").content.decode()
    urls = _asset_urls(html)
    assert len(urls) >= 3, html
    for url in urls:
        assert url.startswith("http://127.0.0.1:"), url
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), url
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        stored_name = staticfiles_storage.stored_name(
            next(k for k, v in staticfiles_storage.hashed_files.items() if url.endswith(v))
        )
        with staticfiles_storage.open(stored_name) as handle:
            assert body == handle.read(), url


def test_second_run_uploads_nothing_and_a_change_reuploads_its_dependents(
    configured: dict[str, Any], sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _collect()
    driver_class = type(staticfiles_storage.driver)
    counter = PutCounter(monkeypatch, driver_class)
    _collect()
    assert counter.keys == []
    (sources / "site" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><g/></svg>")
    _collect()
    changed = sorted(counter.keys)
    assert [k for k in changed if k.startswith("admin/")] == []
    assert "site/logo.svg" in changed
    assert len([k for k in changed if k.startswith("site/logo.")]) == 2
    assert len([k for k in changed if re.fullmatch(r"site/site\.[0-9a-f]{12}\.css", k)]) == 1
    assert "site/site.css" not in changed
    assert "staticfiles.json" in changed
