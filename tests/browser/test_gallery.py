"""Upload a picture in the demo gallery and see its thumbnail load from S3; attach a file
through the direct-upload widget and its progress bar."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stowage.testing.storage_contract import make_png

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

    from tests.browser.conftest import DemoSite


def test_upload_an_image_and_see_its_thumbnail(
    demo_site: DemoSite, page: Page, shots: Callable[[str], Path]
) -> None:
    from playwright.sync_api import expect

    title = f"Square {secrets.token_hex(4)}"
    page.goto(f"{demo_site.url}/")
    page.fill("#id_title", title)
    picture: FilePayload = {"name": "sq.png", "mimeType": "image/png", "buffer": make_png(300, 200)}
    page.set_input_files("#id_image", files=picture)
    shots("form")
    page.click("button[type=submit]")

    card = page.locator(".card", has_text=title)
    expect(card).to_contain_text("300×200 px")
    thumbnail = card.locator("img")
    assert "X-Amz-Signature=" in (thumbnail.get_attribute("src") or "")
    # complete turns true once the image loaded or failed; only a loaded one has a width.
    page.wait_for_function("img => img.complete", arg=thumbnail.element_handle())
    size = thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [240, 160]  # the 300×200 picture fitted into 240×240
    shots("thumbnail")


def test_attach_a_file_straight_to_s3_with_the_progress_bar(
    demo_site: DemoSite, page: Page, shots: Callable[[str], Path]
) -> None:
    from playwright.sync_api import expect

    title = f"Notes {secrets.token_hex(4)}"
    data = os.urandom(12 * 1024 * 1024 + 5)  # two parts of the default 8 MiB
    page.goto(f"{demo_site.url}/")
    box = page.locator("form [data-stowage-upload]")
    expect(box.locator("input[type=file]")).to_have_attribute("name", "attachment")
    page.fill("#id_title", title)
    with page.expect_response("**/uploads/complete/") as completed:
        page.set_input_files(
            "#id_attachment",
            files={"name": "notes.bin", "mimeType": "application/octet-stream", "buffer": data},
        )
    assert completed.value.status == 200
    expect(box.locator(".stowage-upload-status")).to_contain_text("Uploaded notes.bin")
    assert box.locator("progress").evaluate("p => p.value") == 100
    shots("attached")
    page.click("button[type=submit]")

    card = page.locator(".card", has_text=title)
    expect(card).to_be_visible()
    shots("listed")
    href = card.locator("a", has_text="download").get_attribute("href")
    response = page.request.get(f"{demo_site.url}{href}")  # redirected to S3, signed
    assert response.ok
    assert response.body() == data
