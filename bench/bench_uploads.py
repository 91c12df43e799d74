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


def _allow_the_sites(server: MotoServer, bucket: str) -> None:
    """Give ``bucket`` the CORS rule ``manage.py stowage cors --apply`` writes, for every port.

    It lets the page send each part's CRC32 (moto itself answers every
    origin, but the site reads the rule to decide).
    """
    rule = {
        "AllowedOrigins": ["http://127.0.0.1:*"],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["Content-Type", "x-amz-checksum-crc32"],
        "ExposeHeaders": ["ETag"],
    }
    server.boto3().put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


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
            _allow_the_sites(server, options["bucket_name"])
            with _chromium() as browser:
                pair = paired(
                    lambda: _upload(browser, "direct", options, server, source),
                    lambda: _upload(browser, "plain", options, server, source),
                    args.runs,
                )
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
            "Chromium through the widget of `DirectUploadField(upload_to=...)` (presigned S3 "
            "parts, four at a time, each with the CRC32 the page computes, then a form posting "
            "the signed reference) or through a plain `forms.FileField` (the file in the form "
            "post). Ratios are the form post's median over the widget's: above 1 favours the "
            "widget. Each run starts a fresh `runserver` process; its peak RSS is its VmHWM "
            "after the save, idle is the same after serving the empty form, and its CPU is what "
            "it spent from choosing the file to the saved page. The bucket's CORS rule is the "
            "one `manage.py stowage cors --apply` writes, which lets the page send each part's "
            "CRC32. The widget's upload completes at the name the form saves, reserved when "
            "the upload starts, so the save copies nothing; the form post's save is one "
            "multipart upload straight to its name, its parts with their CRC32s too. Django "
            "first spools the posted file to a temporary file on the server's disk. "
            f"Of the widget's {widget['wall'].median:.1f} s, {widget['parts'].median:.1f} s "
            "went to the browser's parts (each read, summed and sent), from choosing the file "
            "to the last one stored; "
            f"{widget['sent'].median - widget['parts'].median:.1f} s to the completion, until "
            "the page held its reference (the multipart upload completed and checked by the "
            "server: moto joins the parts and their CRC32s in Python); "
            f"and {finish:.1f} s from the form's submit to the saved page (the reference "
            "checked by HEADs, the upload claimed, its marker deleted). On loopback the form "
            "post's two legs cost no network; a browser a real network away sends every byte "
            "once either way, and through the widget the Django process never holds it."
        ),
    )
