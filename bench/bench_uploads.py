"""Direct uploads: a large file through the widget against the same file in a Django form post.

Both go to one site (``bench/upload_site`` under Django's runserver) that
saves the file to one S3 storage on moto. Headless Chromium (Debian's,
through Playwright, as in the browser tests) chooses the file. Through the
widget it goes to S3 in presigned parts and the form posts a reference;
through the plain form Django receives the multipart body, spools it to a
temporary file and saves it to S3. Each run starts a fresh site process, so
its peak RSS (VmHWM) is that run's own; its CPU is the user and system time
the site process spent from choosing the file to the saved page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._measure import ROOT, Metrics, Row, Section, Spread, paired, peak_rss_mib

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.servers.moto import MotoServer

__all__ = ["TITLE", "run"]

TITLE = "Direct uploads (moto): through the widget vs a Django form post"
_MiB = 1024 * 1024
#: Seconds one upload may take before the run is given up.
_PATIENCE = 1800
#: Until the widget has a reference to submit, or has failed.
_WIDGET_SETTLED = (
    "() => document.querySelector('input[name=file-staged]').value !== ''"
    " || document.querySelector('.stowage-error') !== null"
)

#: The page's clock: when the file was chosen, and when the widget stored its last part.
_PART_CLOCK = (
    "() => { window.chosen = performance.now(); window.lastPart = window.chosen;"
    " document.addEventListener('stowage:part', () => { window.lastPart = performance.now(); });"
    " }"
)


def _cpu_seconds(pid: int) -> float:
    """Return the user and system CPU seconds process ``pid`` has spent."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _site(options: dict[str, Any], work: Path) -> Iterator[tuple[str, int]]:
    """Run a fresh site process on S3 ``options``; yield its address and PID."""
    from tests.servers._process import free_port, wait_for_port

    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="spool-", dir=work))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.upload_site.settings",
        "PYTHONPATH": str(ROOT),
        "STOWAGE_BENCH_OPTIONS": json.dumps(options),
        "STOWAGE_BENCH_TEMP": str(temp),
    }
    command = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"]
    with open(work / "site.log", "ab") as log:
        process = subprocess.Popen(
            [*command, "--noreload", "--insecure", "--skip-checks"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_port(port, timeout=60, process=process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _upload(
    browser: Browser, form: str, options: dict[str, Any], server: MotoServer, source: Path
) -> Metrics:
    """Upload ``source`` through the page ``form`` of a fresh site; return its figures."""
    work = source.parent
    with _site(options, work) as (url, pid):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(_PATIENCE * 1000)
            page.goto(f"{url}/{form}/")
            page.evaluate(_PART_CLOCK)
            idle, cpu = peak_rss_mib(pid), _cpu_seconds(pid)
            started = time.perf_counter()
            page.set_input_files("#id_file", str(source))
            parts = 0.0
            if form == "direct":
                page.wait_for_function(_WIDGET_SETTLED)
                if page.locator(".stowage-error").count():
                    raise RuntimeError(f"the widget failed: {page.inner_text('.stowage-error')}")
                parts = page.evaluate("() => (window.lastPart - window.chosen) / 1000")
            # The widget's file is at the service now; the form post's is still to be sent.
            sent = time.perf_counter() - started
            page.click("#save")
            saved = page.locator("#saved").inner_text()
            wall = time.perf_counter() - started
            figures = {
                "wall": wall,
                "sent": sent,
                "parts": parts,
                "cpu": _cpu_seconds(pid) - cpu,
                "rss": peak_rss_mib(pid),
                "idle": idle,
            }
        finally:
            context.close()
    name, size = saved.rsplit(" ", 1)
    if int(size) != source.stat().st_size:
        raise RuntimeError(f"{form}: {name} holds {size} bytes, not {source.stat().st_size}")
    server.boto3().delete_object(Bucket=options["bucket_name"], Key=name)
    return figures


@contextlib.contextmanager
def _chromium() -> Iterator[Browser]:
    """Launch Debian's Chromium headless through Playwright."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for start in range(0, size, 8 * _MiB):
            handle.write(os.urandom(min(8 * _MiB, size - start)))


def _row(
    label: str,
    pair: tuple[dict[str, Spread], dict[str, Spread]],
    key: str,
    cell: Callable[[dict[str, Spread]], str],
    goal: str,
    basis: str,
) -> Row:
    ours, theirs = pair
    return Row(
        label,
        cell(ours),
        cell(theirs),
        theirs[key].median / ours[key].median if ours[key].median > 0 else float("inf"),
        goal,
        basis,
        peak_mib=ours["rss"].median if key == "rss" else None,
        figures={
            side: {k: vars(v) for k, v in spreads.items()}
            for side, spreads in (("widget", ours), ("form post", theirs))
        },
    )


def _moto_copy_seconds(server: MotoServer, bucket: str, source: Path) -> float:
    """Return how long moto takes to copy an object of ``source``'s size within a bucket."""
    client = server.boto3()
    with source.open("rb") as body:
        client.upload_fileobj(body, bucket, "copy-source.bin")
    started = time.perf_counter()
    client.copy_object(
        Bucket=bucket,
        Key="copy-target.bin",
        CopySource={"Bucket": bucket, "Key": "copy-source.bin"},
    )
    seconds = time.perf_counter() - started
    client.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "copy-source.bin"}, {"Key": "copy-target.bin"}]},
    )
    return seconds


def _size(size: int) -> str:
    return f"{size // 1024 // _MiB} GiB" if size >= 1024 * _MiB else f"{size // _MiB} MiB"


def run(args: argparse.Namespace) -> Section:
    """Upload one random file through each form, fresh site per run; return the section."""
    from tests.servers.moto import start_moto

    size = (6 if args.quick else 1024) * _MiB
    work = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    try:
        source = work / "upload.bin"
        _random_file(source, size)
        server = start_moto(work)
        try:
            options = server.options(server.create_bucket())
            with _chromium() as browser:
                pair = paired(
                    lambda: _upload(browser, "direct", options, server, source),
                    lambda: _upload(browser, "plain", options, server, source),
                    args.runs,
                )
            copy = _moto_copy_seconds(server, options["bucket_name"], source)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    widget = pair[0]
    finish = widget["wall"].median - widget["sent"].median
    what = f"{_size(size)} file, chosen to saved"
    rows = [
        _row(f"{what}: wall", pair, "wall", lambda s: s["wall"].show(1, "s", 2), "parity", "wall"),
        _row(
            f"{what}: CPU of the Django process",
            pair,
            "cpu",
            lambda s: s["cpu"].show(1, "s", 2),
            "uploads-django-cpu",
            "Django CPU",
        ),
        _row(
            f"{what}: peak RSS of the Django process",
            pair,
            "rss",
            lambda s: f"{s['rss'].show(1, 'MiB', 0)}; idle {s['idle'].median:.0f} MiB",
            "uploads-django-memory",
            "memory",
        ),
    ]
    return Section(
        "uploads",
        TITLE,
        rows,
        header=("measure", "through the widget", "Django form post"),
        notes=(
            "Both columns are stowage: the same site, storage and file, uploaded by headless "
            "Chromium through `DirectUploadField`'s widget (presigned S3 parts, four at a time, "
            "then a form posting the signed reference) or through a plain `forms.FileField` "
            "(the file in the form post). Ratios are the form post's median over the "
            "widget's: above 1 favours the widget. Each run starts a fresh `runserver` "
            "process; its peak RSS is its VmHWM after the save, idle is the same after "
            "serving the empty form, and its CPU is what it spent from choosing the file to "
            "the saved page. The widget's file ends with a server-side copy from its staged "
            "object to its final name, which moto makes by copying the bytes in Python; the "
            "form post's save is one multipart upload straight to its name. Django first "
            "spools the posted file to a temporary file on the server's disk. "
            f"Of the widget's {widget['wall'].median:.1f} s, {widget['parts'].median:.1f} s "
            "went to the browser's parts, from choosing the file to the last one sent; "
            f"{widget['sent'].median - widget['parts'].median:.1f} s to the completion, until "
            "the page held its reference (the multipart upload completed and checked by the "
            "server: moto computes the joined object's CRC64-NVME when the parts carry no "
            "checksum, as the browser's do, which the S3 section times); "
            f"and {finish:.1f} s from the form's "
            "submit to the saved page (the reference checked by a HEAD, the copy to the final "
            "name, the staged object's delete); moto alone copies an object of this size in "
            f"{copy:.1f} s (one CopyObject, timed in the same run). On loopback the form "
            "post's two legs cost no network; a browser a real network away sends every byte "
            "once either way, and through the widget the Django process never holds it. "
            "S3 has no rename, so a file staged before the form names it is copied once: that "
            "copy is the floor of this flow. Going past it takes the final name before the "
            "upload starts (an `upload_to` that needs nothing the form posts), so that the "
            "browser's multipart upload completes at that name; going past moto's completion "
            "cost takes parts that carry their CRC32, computed in the page and signed into "
            "each part's URL by the server."
        ),
    )
