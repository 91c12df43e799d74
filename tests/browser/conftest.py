"""Run the demo site on the S3 backend and drive Debian's Chromium at it with Playwright.

The site is ``example/run.py --backend s3``, exactly as ``make demo`` runs it:
Django's runserver on a free 127.0.0.1 port, files in a moto S3 server that
run.py starts and stops. Chromium is the system one (``make system-deps``);
Playwright's own browser downloads are never used.

While Playwright's sync API runs, its event loop is visible to this thread,
and Django's async-unsafe guard refuses database access from it. These tests
never touch a database (the site is a child process), so the guard stays on
(no DJANGO_ALLOW_ASYNC_UNSAFE), and the browser lives only as long as this
package's tests, before any other test uses the database.

Screenshots go under ``$STOWAGE_TEST_ARTIFACTS`` (default ``test-artifacts/``
in the project root), one directory per test, with ``failure.png`` added
when a test fails.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.servers._process import free_port, wait_for_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "DemoSite", "Shots", "artifacts_dir"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "install Debian's chromium package (`make system-deps`); the tests use "
    f"{CHROMIUM} and never Playwright's own browser downloads"
)
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def artifacts_dir() -> Path:
    """Return where test artifacts go: $STOWAGE_TEST_ARTIFACTS, else test-artifacts/."""
    return Path(os.environ.get("STOWAGE_TEST_ARTIFACTS") or ROOT / "test-artifacts")


@dataclass(frozen=True)
class DemoSite:
    """The running demo site: its address, admin login and log file."""

    url: str
    username: str
    password: str
    log: Path

    def log_tail(self) -> str:
        """Return the end of the site's output, to explain a failure."""
        return self.log.read_text(errors="replace")[-3000:]


class Shots:
    """Save numbered screenshots of one test's page."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.taken: list[Path] = []

    def __call__(self, step: str) -> Path:
        """Save a full-page screenshot named after ``step``; return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.taken) + 1:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests ``once``: they drive the same JavaScript against the same
    services whatever the Python and Django versions, so `make test` runs them on one
    combination (see noxfile.py)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.once)


@pytest.fixture(scope="package")
def demo_site(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """Run ``example/run.py --backend s3`` on a free port until this package's tests end."""
    username, password = runpy.run_path(str(ROOT / "example" / "run.py"))["ADMIN"]
    port = free_port()
    log = server_logs / "demo-site-s3.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "example/run.py", "--backend", "s3", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "STOWAGE_DEMO_DATA": str(tmp_path_factory.mktemp("demo-data"))},
            start_new_session=True,
        )
    site = DemoSite(f"http://127.0.0.1:{port}", username, password, log)
    try:
        try:
            wait_for_port(port, timeout=120, process=process)
        except RuntimeError as exc:
            pytest.fail(f"the demo site did not start: {exc}\n--- output ---\n{site.log_tail()}")
        yield site
    finally:
        process.terminate()  # run.py stops runserver and the S3 server it started
        process.wait(timeout=30)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Launch Debian's Chromium headless through Playwright, or fail saying what is missing."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: pip install -r requirements/test.txt", pytrace=False
        )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}.", pytrace=False)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.fail(
                f"Chromium did not start: {exc.message}\nTo fix: {INSTALL_HINT}.", pytrace=False
            )
        yield chromium
        chromium.close()


@pytest.fixture
def test_artifacts(request: pytest.FixtureRequest) -> Path:
    """Return this test's artifact directory, emptied of an earlier run's files."""
    directory = artifacts_dir() / "browser" / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(directory, ignore_errors=True)
    return directory


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, test_artifacts: Path) -> Iterator[Page]:
    """Open a fresh browser context and page; screenshot it if the test fails."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        yield page
        call = request.node.stash.get(_REPORTS, {}).get("call")
        if call is not None and call.failed:
            test_artifacts.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(test_artifacts / "failure.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def shots(page: Page, test_artifacts: Path) -> Callable[[str], Path]:
    """Return a function saving numbered screenshots of ``page`` for this test."""
    return Shots(page, test_artifacts)
