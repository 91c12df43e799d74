"""The demo site, run as `make demo` runs it: upload a picture, see its thumbnail."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stowage.testing.storage_contract import make_png
from tests.servers._process import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["local", "s3", "gcs", "azure", "sftp"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "site.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "example/run.py", "--backend", request.param, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "STOWAGE_DEMO_DATA": str(tmp_path)},
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(port, timeout=60, process=process)  # type: ignore[arg-type]
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- run.py output ---\n{log.read_text()[-3000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # run.py stops the site and its test server
        process.wait(timeout=30)


def _multipart(fields: dict[str, bytes], files: dict[str, tuple[str, bytes, str]]) -> bytes:
    out = b""
    for name, value in fields.items():
        out += f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    for name, (filename, data, ctype) in files.items():
        out += (
            (
                f'--B\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + b"--B--\r\n"


def test_upload_an_image_and_see_its_thumbnail(site: str) -> None:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    page = opener.open(f"{site}/").read().decode()
    # The attachment's field is stowage's direct-upload widget, with its script.
    assert re.search(
        r'<div[^>]*data-stowage-upload[^>]*>\s*<input type="file" name="attachment"', page
    )
    assert "stowage/direct-upload.js" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    body = _multipart(
        {"csrfmiddlewaretoken": token[1].encode(), "title": b"Square"},
        {"image": ("square.png", make_png(300, 200), "image/png")},
    )
    request = urllib.request.Request(
        f"{site}/upload/",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=B", "Referer": f"{site}/"},
    )
    page = opener.open(request).read().decode()
    assert "300×200 px" in page
    thumbnails = re.findall(r'<img src="([^"]+)"', page)
    assert len(thumbnails) == 1
    url = thumbnails[0].replace("&amp;", "&")
    url = url if url.startswith("http") else site + url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read(3) == b"\xff\xd8\xff"  # a JPEG
    admin = opener.open(f"{site}/admin/login/").read().decode()
    assert "Django administration" in admin
    streamed = opener.open(f"{site}/stream/1/").read()
    assert streamed.startswith(b"\x89PNG")
    assert streamed == make_png(300, 200)


def test_async_upload_endpoint(site: str) -> None:
    data = b"async upload " * 1000
    request = urllib.request.Request(
        f"{site}/api/upload/",
        data=_multipart({}, {"file": ("notes.txt", data, "text/plain")}),
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        answer = json.loads(response.read())
    assert answer == {"name": "api/notes.txt", "size": len(data)}
