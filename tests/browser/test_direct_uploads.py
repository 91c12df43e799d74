"""Upload straight from Chromium to S3 (moto) through DirectUploadWidget, and to tus on memory.

The site is tests/uploads_site under Django's runserver; its form allows
40 MiB and S3 parts are 5 MiB (tus chunks 1 MiB). The script's events are
recorded in the page (``window.__events``, and the bar's value at each
progress event in ``window.__bar``) so the tests see progress without
timing anything.

The large and cut uploads run on sites allowing 256 MiB. On S3 the
storage's endpoint is a :class:`~tests.faults.proxy.FaultProxy` in front of
moto, so the presigned part URLs the browser gets go through it, and
``cut_after`` resets every open connection in the middle of the parts being
sent, as a dropped network does (moto closes its connection after each
answer, so Chromium never sends a cut part again by itself). tus chunks are
cut with Playwright's routing instead: Chromium's network stack sends a
request cut on a reused keep-alive connection again by itself, out of the
page's sight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

from tests.faults.proxy import FaultProxy
from tests.servers._process import free_port, wait_for_port
from tests.servers.moto import MotoServer, start_moto

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request, Route

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
USER, PASSWORD = "uploader", "uploader-pass-1"
#: The form's limit on the sites of the large and cut uploads.
LARGE_LIMIT = 256 * MiB
#: The size of the large uploads.
LARGE = 200 * MiB
#: Seconds a large upload may take on a busy machine before a test gives up.
LARGE_WAIT = 600
#: The browser's requests sending S3 parts, and tus chunks.
PART_URL = re.compile(r".*[?&]partNumber=\d+.*")
TUS_URL = re.compile(r".*/uploads/tus/.*")

RECORD_EVENTS = """
window.__events = [];
window.__bar = [];
for (const name of ["progress", "part", "done", "error", "cancelled", "retry"]) {
  document.addEventListener("stowage:" + name, e => window.__events.push([name, e.detail]));
}
document.addEventListener("stowage:progress", e => {
  window.__bar.push(e.target.querySelector("progress").value);
});
"""


@dataclass(frozen=True)
class Site:
    """The running upload site, and the fault proxy in front of its service if any."""

    url: str
    log: Path
    s3: MotoServer | None
    bucket: str | None
    proxy: FaultProxy | None = None

    def tail(self) -> str:
        """Return the end of the site's log."""
        return self.log.read_text(errors="replace")[-3000:]


def _run_site(
    backend: str, options: dict[str, Any], data: Path, log: Path, max_size: int = 40 * MiB
) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.uploads_site.settings",
        "PYTHONPATH": str(ROOT),
        "STOWAGE_UPLOADS_BACKEND": backend,
        "STOWAGE_UPLOADS_OPTIONS": json.dumps(options),
        "STOWAGE_UPLOADS_DATA": str(data),
        "STOWAGE_UPLOADS_MAX_SIZE": str(max_size),
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
    """Run the site on S3 in a fresh moto server and bucket, its CORS rule as --apply writes it.

    The rule lets the page send each part's CRC32 (the site without it is
    the proxied one).
    """
    s3 = start_moto(server_logs)
    try:
        bucket = s3.create_bucket()
        log = server_logs / "uploads-site-s3.log"
        process, url = _run_site(
            "stowage.S3Storage", s3.options(bucket), tmp_path_factory.mktemp("site-s3"), log
        )
        rule = {
            "AllowedOrigins": [url],
            "AllowedMethods": ["PUT"],
            "AllowedHeaders": ["Content-Type", "x-amz-checksum-crc32"],
            "ExposeHeaders": ["ETag"],
        }
        s3.boto3().put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
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


@pytest.fixture(scope="module")
def s3_proxied_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Run the site on S3 whose endpoint is a fault proxy in front of a fresh moto server."""
    s3 = start_moto(server_logs)
    proxy = FaultProxy(s3.process.port)
    try:
        bucket = s3.create_bucket()
        options = {**s3.options(bucket), "endpoint_url": f"http://127.0.0.1:{proxy.port}"}
        log = server_logs / "uploads-site-s3-proxied.log"
        data = tmp_path_factory.mktemp("site-s3-proxied")
        process, url = _run_site("stowage.S3Storage", options, data, log, LARGE_LIMIT)
        try:
            yield Site(url, log, s3, bucket, proxy)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        proxy.close()
        s3.stop()


@pytest.fixture(scope="module")
def memory_large_site(
    server_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """Run the site on the memory storage (uploads go through tus), allowing 256 MiB."""
    log = server_logs / "uploads-site-memory-large.log"
    data = tmp_path_factory.mktemp("site-memory-large")
    process, url = _run_site("stowage.MemoryStorage", {}, data, log, LARGE_LIMIT)
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


def _wait_event(page: Page, name: str, seconds: float = 60) -> None:
    page.wait_for_function(f"window.__events.some(e => e[0] === {name!r})", timeout=seconds * 1000)


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def _large_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` a piece at a time; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for start in range(0, size, 8 * MiB):
            piece = os.urandom(min(8 * MiB, size - start))
            digest.update(piece)
            handle.write(piece)
    return digest.hexdigest()


def _same_bytes(stream: IO[bytes], path: Path) -> bool:
    """Tell whether ``stream`` holds exactly the bytes of ``path``, comparing piece by piece."""
    with path.open("rb") as expected:
        while True:
            piece = expected.read(MiB)
            if stream.read(len(piece)) != piece:
                return False
            if not piece:
                return stream.read(1) == b""


def _parts_sent(page: Page) -> Counter[int]:
    """Count, from now on, the PUTs of each part number the page sends."""
    sent: Counter[int] = Counter()

    def count(request: Request) -> None:
        found = re.search(r"[?&]partNumber=(\d+)", request.url)
        if found and request.method == "PUT":
            sent[int(found.group(1))] += 1

    page.on("request", count)
    return sent


def _patches_sent(page: Page) -> list[int]:
    """Record, from now on, the Upload-Offset of each tus PATCH the page sends."""
    offsets: list[int] = []
    page.on(
        "request",
        lambda r: offsets.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None,
    )
    return offsets


def _pending_uploads(site: Site) -> list[Any]:
    assert site.s3 is not None
    answer = site.s3.boto3().list_multipart_uploads(Bucket=site.bucket)
    return list(answer.get("Uploads", []))


def _save_and_check(page: Page, site: Site, data: bytes, name: str) -> None:
    _save_and_compare(page, site, len(data), hashlib.sha256(data).hexdigest(), name)
    if site.s3 is not None:
        body = site.s3.boto3().get_object(Bucket=site.bucket, Key=page.inner_text("#name"))
        assert body["Body"].read() == data


def _save_and_check_file(page: Page, site: Site, path: Path, sha256: str) -> None:
    """Save the form, check the page's size and SHA-256, and S3's object byte for byte."""
    _save_and_compare(page, site, path.stat().st_size, sha256, path.name)
    if site.s3 is not None:
        body = site.s3.boto3().get_object(Bucket=site.bucket, Key=page.inner_text("#name"))
        assert _same_bytes(body["Body"], path)


def _save_and_compare(page: Page, site: Site, size: int, sha256: str, name: str) -> None:
    """Submit the form; check only the reference went, and the saved file's size and hash."""
    posted: list[Request] = []
    page.on(
        "request",
        lambda r: posted.append(r) if r.method == "POST" and r.url.endswith("/new/") else None,
    )
    page.click("#save")
    # A large file is copied into place and read back to hash it before the page shows.
    page.wait_for_url("**/doc/*/", timeout=LARGE_WAIT * 1000)
    # Only the reference was submitted, not the file.
    assert posted
    assert len(posted[-1].post_data_buffer or b"") < 10_000
    stored = page.inner_text("#name")
    assert re.fullmatch(rf"docs/{re.escape(name.rsplit('.', 1)[0])}(_\w{{7}})?\.bin", stored)
    assert page.inner_text("#size") == str(size)
    assert page.inner_text("#sha256") == sha256


def test_large_upload_to_s3_with_progress_then_saved_byte_for_byte(
    s3_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    data = _random_file(path, 30 * MiB + 123)
    _sign_in(page, s3_site)
    page.fill("#id_title", "Big")
    shots("form")
    signed: list[dict[str, Any]] = []

    def keep(request: Any) -> None:
        if request.url.endswith("/sign/"):
            signed.append(json.loads(request.post_data or "{}"))

    page.on("request", keep)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    # Each part went with its CRC32, computed in the page, signed one part at a time.
    sent = {int(n): c for request in signed for n, c in request["checksums"].items()}
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    crcs = [base64.b64encode(zlib.crc32(part).to_bytes(4, "big")).decode() for part in parts]
    assert sent == dict(enumerate(crcs, start=1))
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


# -- large uploads ---------------------------------------------------------------------------


def _upload_large(page: Page, site: Site, shots: Callable[[str], Path], path: Path) -> str:
    """Upload a 200 MiB random file through the widget, seeing the bar move; return its SHA-256."""
    sha256 = _large_random_file(path, LARGE)
    _sign_in(page, site)
    page.fill("#id_title", "Large")
    page.set_input_files("#id_file", str(path))
    page.wait_for_function(
        "document.querySelector('progress').value >= 20", timeout=LARGE_WAIT * 1000
    )
    shots("uploading")
    _wait_event(page, "done", LARGE_WAIT)
    shots("uploaded")
    bar = page.evaluate("window.__bar")
    assert len(set(bar)) > 10, bar  # the bar advanced through many values
    assert bar == sorted(bar)
    assert bar[-1] == 100
    loaded = [event["loaded"] for event in _events(page, "progress")]
    assert loaded == sorted(loaded)
    assert loaded[-1] == LARGE
    assert page.locator("progress").evaluate("p => p.value") == 100
    assert "Uploaded large.bin (200.0 MiB)" in page.inner_text(".stowage-upload-status")
    return sha256


def test_200_mib_upload_to_s3_in_parts_read_back_byte_for_byte(
    s3_proxied_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "large.bin"
    sent = _parts_sent(page)
    sha256 = _upload_large(page, s3_proxied_site, shots, path)
    count = LARGE // (5 * MiB)
    assert sorted(e["number"] for e in _events(page, "part")) == list(range(1, count + 1))
    assert set(sent) == set(range(1, count + 1))
    _save_and_check_file(page, s3_proxied_site, path, sha256)
    shots("saved")
    assert _pending_uploads(s3_proxied_site) == []


def test_200_mib_upload_through_tus_read_back_byte_for_byte(
    memory_large_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "large.bin"
    offsets = _patches_sent(page)
    sha256 = _upload_large(page, memory_large_site, shots, path)
    assert offsets == list(range(0, LARGE, MiB))  # 1 MiB chunks, each sent once
    _save_and_check_file(page, memory_large_site, path, sha256)
    shots("saved")


# -- connections cut mid-upload --------------------------------------------------------------


def _down_after_the_cut(page: Page, proxy: FaultProxy, urls: re.Pattern[str]) -> None:
    """Make the requests to ``urls`` fail as unreachable once ``proxy`` has cut."""
    cuts = proxy.injected.count("cut")

    def route(route: Route) -> None:
        if proxy.injected.count("cut") > cuts:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(urls, route)


def _before_first_retry(page: Page, name: str) -> list[Any]:
    """Return the details of the ``name`` events fired before the first retry."""
    found = []
    for kind, detail in page.evaluate("window.__events"):
        if kind == "retry":
            break
        if kind == name:
            found.append(detail)
    return found


def test_s3_parts_cut_mid_upload_are_retried_and_stored_parts_not_sent_again(
    s3_proxied_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    proxy = s3_proxied_site.proxy
    assert proxy is not None
    path = tmp_path / "cut.bin"
    sha256 = _large_random_file(path, 40 * MiB)  # 8 parts of 5 MiB, 4 sent at a time
    sent = _parts_sent(page)
    _sign_in(page, s3_proxied_site)
    page.fill("#id_title", "Cut")
    # At most four parts are on their way at a time, so when 30 MiB have been sent at
    # least two parts of 5 MiB are stored and answered; the cut resets the connections
    # of those in flight, in the middle of their bodies (or before their answer).
    proxy.cut_after(30 * MiB)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("uploaded-after-the-cut")
    assert proxy.injected[-1] == "cut"
    retried = Counter(e["part"] for e in _events(page, "retry"))
    assert retried, "the cut hit no part in flight"
    stored_first = {e["number"] for e in _before_first_retry(page, "part")}
    assert stored_first, "no part was whole before the cut"
    assert not stored_first & set(retried)
    # Each part went once, and again only for each retry of it.
    assert sent == {n: 1 + retried[n] for n in range(1, 9)}
    assert sorted(e["number"] for e in _events(page, "part")) == list(range(1, 9))
    _save_and_check_file(page, s3_proxied_site, path, sha256)
    shots("saved")


def test_s3_upload_cut_until_it_fails_resumes_after_a_reload_from_the_stored_parts(
    s3_proxied_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    proxy, s3 = s3_proxied_site.proxy, s3_proxied_site.s3
    assert proxy is not None
    assert s3 is not None
    path = tmp_path / "down.bin"
    sha256 = _large_random_file(path, 40 * MiB)
    _sign_in(page, s3_proxied_site)
    before = {u["UploadId"] for u in _pending_uploads(s3_proxied_site)}
    proxy.cut_after(30 * MiB)  # some parts stored and some not, as above
    _down_after_the_cut(page, proxy, PART_URL)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    shots("failed")
    assert _events(page, "retry")
    page.reload()  # stops the parts still retrying, before the service is reachable again
    page.unroute(PART_URL)

    (upload,) = [u for u in _pending_uploads(s3_proxied_site) if u["UploadId"] not in before]
    listed = s3.boto3().list_parts(
        Bucket=s3_proxied_site.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
    )
    stored = {part["PartNumber"] for part in listed.get("Parts", [])}
    assert stored, "no part was whole before the cut"
    assert stored != set(range(1, 9))

    sent = _parts_sent(page)
    page.fill("#id_title", "Resumed after a reload")
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    shots("resumed")
    assert sent == dict.fromkeys(set(range(1, 9)) - stored, 1)  # stored parts were not sent
    _save_and_check_file(page, s3_proxied_site, path, sha256)


def _upload_offsets(page: Page) -> list[int]:
    """Record, from now on, the Upload-Offset each tus HEAD answers."""
    answered: list[int] = []
    page.on(
        "response",
        lambda r: (
            answered.append(int(r.headers["upload-offset"]))
            if r.request.method == "HEAD" and "upload-offset" in r.headers
            else None
        ),
    )
    return answered


def test_tus_chunk_cut_is_sent_again_from_the_offset_the_server_holds(
    memory_large_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "cut.bin"
    size = 24 * MiB
    sha256 = _large_random_file(path, size)
    _sign_in(page, memory_large_site)
    page.fill("#id_title", "Cut")
    offsets, heads = _patches_sent(page), _upload_offsets(page)
    cut: list[Request] = []

    def cut_the_11th_chunk_once(route: Route) -> None:
        if not cut and route.request.headers.get("upload-offset") == str(10 * MiB):
            cut.append(route.request)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(TUS_URL, cut_the_11th_chunk_once)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "done")
    page.unroute(TUS_URL)
    shots("uploaded-after-the-cut")
    assert len(cut) == 1
    assert [e["offset"] for e in _events(page, "retry")] == [10 * MiB]
    # The retry asked how much had arrived, and sent the rest from there.
    assert heads == [10 * MiB]
    assert offsets == [*range(0, 11 * MiB, MiB), *range(10 * MiB, size, MiB)]
    _save_and_check_file(page, memory_large_site, path, sha256)
    shots("saved")


def test_tus_upload_cut_until_it_fails_resumes_after_a_reload_from_the_offset(
    memory_large_site: Site, page: Page, shots: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "down.bin"
    size = 24 * MiB
    sha256 = _large_random_file(path, size)
    _sign_in(page, memory_large_site)
    page.fill("#id_title", "Down")
    down: list[Request] = []

    def down_from_the_11th_chunk(route: Route) -> None:
        if down or route.request.headers.get("upload-offset") == str(10 * MiB):
            down.append(route.request)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(TUS_URL, down_from_the_11th_chunk)
    page.set_input_files("#id_file", str(path))
    _wait_event(page, "error")
    shots("failed")
    assert len(_events(page, "retry")) == 4  # every pause of the script spent
    page.reload()
    page.unroute(TUS_URL)

    offsets = _patches_sent(page)
    with page.expect_response("**/uploads/status/") as status:
        page.set_input_files("#id_file", str(path))
    assert status.value.json()["offset"] == 10 * MiB
    _wait_event(page, "done")
    shots("resumed")
    assert offsets == list(range(10 * MiB, size, MiB))  # the ten chunks stored were not sent
    page.fill("#id_title", "Resumed after a reload")
    _save_and_check_file(page, memory_large_site, path, sha256)
