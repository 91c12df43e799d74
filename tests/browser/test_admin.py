"""Upload a file through the Django admin to S3, open the admin's link, get the same bytes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

    from tests.browser.conftest import DemoSite


def test_admin_upload_to_s3_then_download_the_same_bytes(
    demo_site: DemoSite, page: Page, shots: Callable[[str], Path]
) -> None:
    token = secrets.token_hex(8)
    name = f"notes-{token}.txt"
    content = f"stowage in the admin, {token} ✓\n".encode() * 200

    page.goto(f"{demo_site.url}/admin/login/?next=/admin/gallery/item/add/")
    page.fill("#id_username", demo_site.username)
    page.fill("#id_password", demo_site.password)
    shots("login")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/gallery/item/add/")
    page.fill("#id_title", f"Notes {token}")
    upload: FilePayload = {"name": name, "mimeType": "text/plain", "buffer": content}
    page.set_input_files("#id_attachment", files=upload)
    shots("add-form")
    page.click("input[name=_continue]")  # "Save and continue editing": the change form
    page.wait_for_url("**/admin/gallery/item/*/change/")
    link = page.locator(".field-attachment .file-upload a")
    assert link.inner_text() == f"files/{name}"
    href = link.get_attribute("href")
    assert href is not None
    shots("saved")

    # The admin links to the object on S3 itself, with a signed URL.
    site, target = urlsplit(demo_site.url), urlsplit(href)
    assert target.hostname == "127.0.0.1"
    assert target.port != site.port
    assert target.path.endswith(f"/files/{name}")
    assert parse_qs(target.query)["X-Amz-Expires"] == ["600"]

    response = page.goto(href)
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    shots("file")
    # Playwright hands back a navigation's text re-encoded; fetch() in the page
    # (now on the file's own origin) gives the bytes as the browser received them.
    received = page.evaluate(
        "async url => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer()))", href
    )
    assert bytes(received) == content
