"""Upload straight from Chromium to S3 (moto) through DirectUploadWidget, and to tus on memory.

The site is tests/uploads_site under Django's runserver; its form allows
40 MiB and S3 parts are 5 MiB. The script's events are recorded in the page
(``window.__events``) so the tests see progress without timing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.servers._process import free_port, wait_for_port
from tests.servers.moto import MotoServer, start_moto

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request, Route

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
USER, PASSWORD = "uploader", "uploader-pass-1"

RECORD_EVENTS = """
window.__events = [];
for (const name of ["progress", "part", "done", "error", "cancelled"]) {
  document.addEventListener("stowage:" + name, e => window.__events.push([name, e.detail]));
}
"""


@dataclass(frozen=True)
class Site:
    """The running upload site."""

    url: str
    log: Path
    s3: MotoServer | None
    bucket: str | None

    def tail(self) -> str:
        """Return the end of the site's log."""
        return self.log.read_text(errors="replace")[-3000:]


def _run_site(
    backend: str, options: dict[str, Any], data: Path, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.uploads_site.settings",
        "PYTHONPATH": str(ROOT),
        "STOWAGE_UPLOADS_BACKEND": backend,
        "STOWAGE_UPLOADS_OPTIONS": json.dumps(options),
        "STOWAGE_UPLOADS_DATA": str(data),
    }
    manage = [sys.executable, "-m", "django"]
    subprocess.run([*manage, "migrate", "--run-syncdb", "-v", "0"], env=env, check=True, cwd=ROOT)
    create = (
        "from django.contrib.auth.models import Permission, User\n"
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r})\n"
        "u.user_permissions.add(Permission.objects.get(codename='add_document'))\n"
        f"User.objects.create_superuser('admin', 'a@example.com', {PASSWORD!r})\n"
    )
    subprocess.run([*manage, "shell", "-v", "0", "-c", create], env=env, check=True, cwd=ROOT)
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=60, process=process)
    except RuntimeError as exc:
        process.terminate()
        pytest.fail(f"the upload site did not start: {exc}\n{log.read_text(errors='replace')}")
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def s3_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Run the site on S3 in a fresh moto server and bucket."""
    s3 = start_moto(server_logs)
    try:
        bucket = s3.create_bucket()
        log = server_logs / "uploads-site-s3.log"
        process, url = _run_site(
            "stowage.S3Storage", s3.options(bucket), tmp_path_factory.mktemp("site-s3"), log
        )
        try:
            yield Site(url, log, s3, bucket)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        s3.stop()


@pytest.fixture(scope="module")
def memory_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Run the site on the in-memory storage (uploads go through tus)."""
    log = server_logs / "uploads-site-memory.log"
    process, url = _run_site(
        "stowage.MemoryStorage", {}, tmp_path_factory.mktemp("site-memory"), log
    )
    try:
        yield Site(url, log, None, None)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _sign_in(page: Page, site: Site) -> None:
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{site.url}/login/?next=/new/")
    page.fill("#id_username", USER)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/new/")


def _events(page: Page, name: str) -> list[Any]:
    return [detail for kind, detail in page.evaluate("window.__events") if kind == name]


def _wait_event(page: Page, name: str) -> None:
    page.wait_for_function(f"window.__events.some(e => e[0] === {name!r})", timeout=60_000)


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def _pending_uploads(site: Site) -> list[Any]:
    assert site.s3 is not None
    answer = site.s3.boto3().list_multipart_uploads(Bucket=site.bucket)
    return list(answer.get("Uploads", []))


def _save_and_check(page: Page, site: Site, data: bytes, name: str) -> None:
    posted: list[Request] = []
    page.on(
        "request",
        lambda r: posted.append(r) if r.method == "POST" and r.url.endswith("/new/") else None,
    )
    page.click("#save")
    page.wait_for_url("**/doc/*/")
    # Only the reference was submitted, not the file.
    assert posted
    assert len(posted[-1].post_data_buffer or b"") < 10_000
    stored = page.inner_text("#name")
    assert re.fullmatch(rf"docs/{re.escape(name.rsplit('.', 1)[0])}(_\w{{7}})?\.bin", stored)
    assert page.inner_text("#size") == str(len(data))
    assert page.inner_text("#sha256") == hashlib.sha256(data).hexdigest()
    if site.s3 is not None:
        body = site.s3.boto3().get_object(Bucket=site.bucket, Key=stored)["Body"].read()
        assert body == data


def test_large_upload_to_s3_with_progress_then_saved_byte_for_byte(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    data = _random_file(path, 30 * MiB + 123)
    _sign_in(page, s3_site)
    page.fill("#id_title", "Big")
    shots("form")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("uploaded")
    loaded = [event["loaded"] for event in _events(page, "progress")]
    assert len(set(loaded)) > 3, loaded  # the bar moved through several values
    assert loaded == sorted(loaded)
    assert loaded[-1] == len(data)
    assert sorted(e["number"] for e in _events(page, "part")) == list(range(1, 8))
    assert page.locator("progress").evaluate("p => p.value") == 100
    assert "(100%)" in page.inner_text(".stowage-upload-status") or "Uploaded" in page.inner_text(
        ".stowage-upload-status"
    )
    _save_and_check(page, s3_site, data, "big.bin")
    shots("saved")
    assert _pending_uploads(s3_site) == []


def test_upload_resumes_after_a_cut_connection_and_a_reload(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "resumed.bin"
    data = _random_file(path, 18 * MiB)
    let_through: list[str] = []

    def cut(route: Route) -> None:
        if not let_through:
            let_through.append(route.request.url)
            route.continue_()
        else:
            route.abort("connectionreset")

    _sign_in(page, s3_site)
    page.route(re.compile(r".*[?&]partNumber=\d+.*"), cut)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    _wait_event(page, "part")
    shots("cut")
    first = int(re.search(r"partNumber=(\d+)", let_through[0]).group(1))  # type: ignore[union-attr]
    assert [e["number"] for e in _events(page, "part")] == [first]
    page.unroute(re.compile(r".*[?&]partNumber=\d+.*"))

    sent: list[int] = []
    page.on(
        "request",
        lambda r: (
            sent.append(int(m.group(1)))
            if (m := re.search(r"partNumber=(\d+)", r.url)) and r.method == "PUT"
            else None
        ),
    )
    page.reload()
    page.fill("#id_title", "Resumed")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("resumed")
    assert sorted(sent) == sorted(set(range(1, 5)) - {first})
    _save_and_check(page, s3_site, data, "resumed.bin")


def test_cancel_aborts_the_upload_on_s3(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "cancelled.bin"
    _random_file(path, 12 * MiB)
    held: list[Route] = []

    def hold(route: Route) -> None:
        if not held:
            held.append(route)
            route.continue_()
        else:
            held.append(route)  # left pending: the upload stays in flight

    _sign_in(page, s3_site)
    before = {u["UploadId"] for u in _pending_uploads(s3_site)}
    page.route(re.compile(r".*[?&]partNumber=\d+.*"), hold)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "part")
    shots("in-flight")
    with page.expect_response("**/uploads/abort/") as aborted:
        page.click(".stowage-upload-cancel")
    assert aborted.value.status == 200
    shots("cancelled")
    assert page.inner_text(".stowage-upload-status") == "Upload cancelled."
    assert page.input_value("input[name=file-staged]") == ""
    assert {u["UploadId"] for u in _pending_uploads(s3_site)} <= before
    assert _events(page, "cancelled")
    page.unroute(re.compile(r".*[?&]partNumber=\d+.*"))


def test_too_large_file_is_refused_by_the_server(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as handle:
        handle.truncate(40 * MiB + 1)
    _sign_in(page, s3_site)
    with page.expect_response("**/uploads/") as created:
        page.set_input_files("#id_file", str(path))
    assert created.value.status == 413
    _wait_event(page, "error")
    shots("refused")
    assert "too large" in page.inner_text(".stowage-upload-status")
    assert page.input_value("input[name=file-staged]") == ""


def test_tus_fallback_on_memory_storage(
    memory_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "chunked.bin"
    data = _random_file(path, 3 * MiB + 7)
    _sign_in(page, memory_site)
    page.fill("#id_title", "Chunked")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("uploaded")
    assert len({e["loaded"] for e in _events(page, "progress")}) > 3
    _save_and_check(page, memory_site, data, "chunked.bin")
    shots("saved")


def test_without_javascript_the_field_is_a_plain_file_input(
    memory_site: Site, browser: Any, tmp_path: Path, test_artifacts: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{memory_site.url}/login/?next=/new/")
        page.fill("#id_username", USER)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/new/")
        data = b"plain form post\n" * 1000
        page.fill("#id_title", "Plain")
        page.set_input_files(
            "#id_file",
            {"name": "plain.bin", "mimeType": "application/octet-stream", "buffer": data},
        )
        page.click("#save")
        page.wait_for_url("**/doc/*/")
        test_artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(test_artifacts / "saved.png"))
        assert page.inner_text("#size") == str(len(data))
        assert page.inner_text("#sha256") == hashlib.sha256(data).hexdigest()
    finally:
        context.close()


def test_admin_add_form_uploads_directly_to_s3(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "admin-notes.bin"
    data = _random_file(path, 6 * MiB)
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{s3_site.url}/admin/login/?next=/admin/uploads_site/document/add/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/uploads_site/document/add/")
    page.fill("#id_title", "From the admin")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("uploaded")
    page.click("input[name=_continue]")
    page.wait_for_url("**/admin/uploads_site/document/*/change/")
    shots("saved")
    link = page.locator(".stowage-upload a").first
    stored = link.inner_text()
    assert re.fullmatch(r"docs/admin-notes(_\w{7})?\.bin", stored)
    assert s3_site.s3 is not None
    body = s3_site.s3.boto3().get_object(Bucket=s3_site.bucket, Key=stored)["Body"].read()
    assert body == data


def test_a_form_shown_again_keeps_the_upload(
    memory_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "kept.bin"
    data = _random_file(path, 2 * MiB)
    _sign_in(page, memory_site)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    page.evaluate("document.querySelector('form').noValidate = true")
    page.click("#save")  # no title: the form comes back with an error
    page.wait_for_load_state()
    assert page.locator(".errorlist").count() == 1
    assert page.input_value("input[name=file-staged]") != ""
    assert "kept" in page.inner_text(".stowage-upload-status")
    shots("shown-again")
    page.fill("#id_title", "Kept")
    _save_and_check(page, memory_site, data, "kept.bin")
