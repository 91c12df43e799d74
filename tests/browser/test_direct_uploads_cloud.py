"""Upload straight from Chromium to GCS (fake-gcs-server) and Azure (Azurite).

The site is tests/uploads_site under Django's runserver, as for S3, with a
256 MiB limit and 8 MiB parts; each service runs in a server of its own for
this module. The CORS rule comes from ``manage.py stowage cors --apply``.
Azurite enforces it (its preflights fail for other origins); fake-gcs-server
answers every origin whatever the bucket's rules (it keeps no ``cors``
metadata) and exposes no ``Range`` header to scripts, so there the widget
takes each 308 answer as the whole chunk stored, as the service's answer says.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.browser.test_direct_uploads import (
    Site,
    _events,
    _run_site,
    _save_and_check,
    _sign_in,
    _wait_event,
)
from tests.servers.azurite import start_azurite
from tests.servers.fake_gcs import start_fake_gcs

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request, Route

MiB = 1024 * 1024
PART = 8 * MiB
LIMIT = 256 * MiB
BIG = 200 * MiB
GCS_CHUNK = re.compile(r".*/upload/storage/v1/b/.*[?&]upload_id=.*")
AZURE_BLOCK = re.compile(r".*[?&]comp=block&blockid=.*")


def _start_site(
    backend: str, options: dict[str, Any], server_logs: Path, data: Path, name: str
) -> tuple[Any, Site]:
    """Run the site on ``backend``, then add the CORS rule its origin needs."""
    log = server_logs / f"uploads-site-{name}.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STOWAGE_UPLOADS_PART_SIZE", str(PART))
        process, url = _run_site(backend, options, data, log, max_size=LIMIT)
    storages = {
        "default": {"BACKEND": backend, "OPTIONS": options},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages, STOWAGE_DIRECT_UPLOADS={}):
        call_command("stowage", "cors", "--origin", url, "--apply", stdout=io.StringIO())
    return process, Site(url, log, None, None)


@pytest.fixture(scope="module")
def gcs_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Run the site on GCS in a fresh fake-gcs-server and bucket."""
    gcs = start_fake_gcs(server_logs)
    try:
        options = {"bucket_name": gcs.create_bucket(), "api_endpoint": gcs.url, "anonymous": True}
        data = tmp_path_factory.mktemp("site-gcs")
        process, site = _start_site("stowage.GCSStorage", options, server_logs, data, "gcs")
        try:
            yield site
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        gcs.stop()


@pytest.fixture(scope="module")
def azure_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Run the site on Azure in a fresh Azurite and container."""
    azurite = start_azurite(server_logs)
    try:
        options = azurite.options(azurite.create_container())
        data = tmp_path_factory.mktemp("site-azure")
        process, site = _start_site("stowage.AzureStorage", options, server_logs, data, "azure")
        try:
            yield site
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        azurite.stop()


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def _upload_big_file(page: Page, site: Site, shots: Callable[[str], Path], tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = _random_file(path, BIG + 123)
    _sign_in(page, site)
    page.fill("#id_title", "Big")
    page.set_input_files("#id_file", str(path))
    page.wait_for_function("window.__events.some(e => e[0] === 'progress' && e[1].loaded > 0)")
    shots("uploading")
    page.wait_for_function("window.__events.some(e => e[0] === 'done')", timeout=300_000)
    shots("uploaded")
    loaded = [event["loaded"] for event in _events(page, "progress")]
    assert len(set(loaded)) > 10, loaded  # the bar moved through many values
    assert loaded == sorted(loaded)
    assert loaded[-1] == len(data)
    assert page.locator("progress").evaluate("p => p.value") == 100
    _save_and_check(page, site, data, "big.bin")
    shots("saved")


def _refused_as_too_large(page: Page, site: Site, shots: Callable[[str], Path], tmp: Path) -> None:
    path = tmp / "huge.bin"
    with path.open("wb") as handle:
        handle.truncate(LIMIT + 1)  # sparse
    _sign_in(page, site)
    with page.expect_response("**/uploads/") as created:
        page.set_input_files("#id_file", str(path))
    assert created.value.status == 413
    _wait_event(page, "error")
    shots("refused")
    assert "too large" in page.inner_text(".stowage-upload-status")
    assert page.input_value("input[name=file-staged]") == ""


# -- GCS ------------------------------------------------------------------------------


def test_gcs_200_mib_upload_with_progress_then_saved_byte_for_byte(
    gcs_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    _upload_big_file(page, gcs_site, shots, tmp_path)


def _chunk_range(request: Request) -> tuple[int, int]:
    found = re.fullmatch(r"bytes (\d+)-(\d+)/\d+", request.headers["content-range"])
    assert found is not None, request.headers["content-range"]
    return int(found[1]), int(found[2]) + 1


def test_gcs_upload_resumes_after_a_cut_connection_and_a_reload(
    gcs_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "resumed.bin"
    data = _random_file(path, 5 * PART - 1000)
    passed: list[tuple[int, int]] = []

    def cut(route: Route) -> None:
        if len(passed) < 2:
            passed.append(_chunk_range(route.request))
            route.continue_()
        else:
            route.abort("connectionreset")

    _sign_in(page, gcs_site)
    page.route(GCS_CHUNK, cut)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    shots("cut")
    assert passed == [(0, PART), (PART, 2 * PART)]
    page.unroute(GCS_CHUNK)

    sent: list[tuple[int, int]] = []
    status_asked: list[str] = []

    def record(request: Request) -> None:
        if request.method == "PUT" and GCS_CHUNK.fullmatch(request.url):
            sent.append(_chunk_range(request))
        if request.url.endswith("/uploads/status/"):
            status_asked.append(request.url)

    page.on("request", record)
    page.reload()
    page.fill("#id_title", "Resumed")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("resumed")
    # The two stored chunks were not sent again: the widget went on from the
    # offset the session had confirmed, without asking the server.
    assert sent == [(2 * PART, 3 * PART), (3 * PART, 4 * PART), (4 * PART, len(data))]
    assert status_asked == []
    _save_and_check(page, gcs_site, data, "resumed.bin")


def test_gcs_too_large_file_is_refused(
    gcs_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    _refused_as_too_large(page, gcs_site, shots, tmp_path)


# -- Azure ----------------------------------------------------------------------------


def test_azure_200_mib_upload_with_progress_then_saved_byte_for_byte(
    azure_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    _upload_big_file(page, azure_site, shots, tmp_path)


def _block_number(url: str) -> int:
    block_id = parse_qs(urlsplit(url).query)["blockid"][0]
    return int(base64.b64decode(block_id))


def test_azure_upload_resumes_after_a_cut_connection_and_a_reload(
    azure_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "resumed.bin"
    data = _random_file(path, 6 * PART + 5)
    passed: list[int] = []

    def cut(route: Route) -> None:
        if len(passed) < 2:
            passed.append(_block_number(route.request.url))
            route.continue_()
        else:
            route.abort("connectionreset")

    _sign_in(page, azure_site)
    page.route(AZURE_BLOCK, cut)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    page.wait_for_function("window.__events.filter(e => e[0] === 'part').length === 2")
    shots("cut")
    assert sorted(e["number"] for e in _events(page, "part")) == sorted(passed)
    page.unroute(AZURE_BLOCK)

    sent: list[int] = []
    page.on(
        "request",
        lambda r: (
            sent.append(_block_number(r.url))
            if r.method == "PUT" and AZURE_BLOCK.fullmatch(r.url)
            else None
        ),
    )
    page.reload()
    page.fill("#id_title", "Resumed")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("resumed")
    assert sorted(sent) == sorted(set(range(1, 8)) - set(passed))
    _save_and_check(page, azure_site, data, "resumed.bin")


def test_azure_too_large_file_is_refused(
    azure_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    _refused_as_too_large(page, azure_site, shots, tmp_path)


def test_azure_refuses_an_origin_its_cors_rules_do_not_name(
    azure_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    # The same site under another name (localhost) is another origin: the
    # browser's preflight to Azurite fails, and the widget says so.
    path = tmp_path / "elsewhere.bin"
    _random_file(path, MiB)
    other = Site(azure_site.url.replace("127.0.0.1", "localhost"), azure_site.log, None, None)
    _sign_in(page, other)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    shots("refused-by-cors")
    assert "connection failed" in page.inner_text(".stowage-upload-status")
    assert page.input_value("input[name=file-staged]") == ""
