"""Run Django's own ``file_storage`` tests against Django's storages and stowage's.

Django ships its test suite in the source distribution (not in the wheel).
This module:

1. downloads the sdist of the installed Django version with
   ``pip download --no-binary :all:`` into ``.cache/django-src/`` at the
   project's root (kept between runs; delete it to fetch again), and unpacks
   its ``tests/`` directory there;
2. copies that directory once per pass, adds :mod:`recording_settings` (Django's
   test settings plus a runner that writes each test's outcome as JSON), and
   for the stowage pass rewrites ``tests/file_storage/*.py`` as described in
   :func:`use_stowage`;
3. runs ``runtests.py file_storage --parallel 1`` with the current interpreter
   and returns ``{test id: outcome}``.

The rewrite is deliberately small, so a failing test means what it says:

* after each ``from django.core.files.storage import ...`` that imports
  ``FileSystemStorage`` or ``InMemoryStorage``, one line rebinds the name:
  ``from stowage import LocalStorage as FileSystemStorage``. Test classes,
  subclasses (``class OverwritingStorage(FileSystemStorage)``), ``isinstance``
  checks and test ids stay exactly as Django wrote them;
* the dotted paths ``"django.core.files.storage.FileSystemStorage"`` and
  ``"...InMemoryStorage"`` in string literals (``STORAGES`` backends, the
  expected result of ``deconstruct()``) become the dotted path of stowage's
  class, except inside the tests of :data:`VERBATIM_TESTS`, which check
  Django's own defaults rather than a storage.

Nothing else in Django's tests is changed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

import stowage

__all__ = [
    "CACHE_DIR",
    "STOWAGE_CLASSES",
    "VERBATIM_TESTS",
    "SuiteError",
    "SuiteRun",
    "django_tests_dir",
    "run_file_storage_tests",
    "use_stowage",
]

#: Where the Django source distribution is downloaded and unpacked.
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "django-src"

#: Each Django class name and the stowage class that stands in for it.
STOWAGE_CLASSES: dict[str, type[stowage.Storage]] = {
    "FileSystemStorage": stowage.LocalStorage,
    "InMemoryStorage": stowage.MemoryStorage,
}

#: Test methods whose dotted paths stay Django's, and why.
VERBATIM_TESTS = {
    "test_defaults": "compares StorageHandler() with Django's global STORAGES default",
}

_DJANGO_MODULE = "django.core.files.storage"
_SETTINGS = Path(__file__).with_name("recording_settings.py")
_SUITE_TIMEOUT = 600


class SuiteError(RuntimeError):
    """Say why Django's test suite could not be fetched or run."""


@dataclasses.dataclass
class SuiteRun:
    """The outcome of one pass of ``runtests.py file_storage``."""

    #: ``{test id: {"outcome": ..., "detail": ...}}`` as written by the runner.
    results: dict[str, dict[str, str]]
    #: Everything runtests.py printed.
    output: str
    seconds: float

    def ids(self, outcome: str) -> set[str]:
        """Return the ids of the tests that ended with ``outcome``."""
        return {test for test, found in self.results.items() if found["outcome"] == outcome}

    def counts(self) -> dict[str, int]:
        """Return how many tests ended with each outcome."""
        counts: dict[str, int] = {}
        for found in self.results.values():
            counts[found["outcome"]] = counts.get(found["outcome"], 0) + 1
        return dict(sorted(counts.items()))


def _pip_download(version: str, target: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"django=={version}",
        "-d",
        str(target),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    archives = sorted(target.glob(f"[dD]jango-{version}.tar.gz"))
    if done.returncode != 0 or not archives:
        raise SuiteError(
            f"Could not download Django {version}'s source distribution (which carries "
            f"its tests/) with {' '.join(command)!r}; it exited {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return archives[0]


def django_tests_dir(version: str = django.__version__, cache: Path = CACHE_DIR) -> Path:
    """Return Django's unpacked ``tests/`` for ``version``, downloading it if needed."""
    unpacked = cache / f"django-{version}" / "tests"
    if (unpacked / "runtests.py").is_file():
        return unpacked
    cache.mkdir(parents=True, exist_ok=True)
    archive = next(iter(sorted(cache.glob(f"[dD]jango-{version}.tar.gz"))), None)
    if archive is None:
        archive = _pip_download(version, cache)
    # Unpack beside the cache and rename, so a run that stops halfway leaves
    # no tree that looks complete.
    with tempfile.TemporaryDirectory(dir=cache) as staging, tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[1:2] == ["tests"]]
        if not members:
            raise SuiteError(f"{archive.name} holds no tests/ directory.")
        tar.extractall(staging, members=members, filter="data")
        top = Path(staging) / members[0].name.split("/")[0]
        unpacked.parent.mkdir(exist_ok=True)
        if not (unpacked / "runtests.py").is_file():
            shutil.rmtree(unpacked, ignore_errors=True)
            (top / "tests").rename(unpacked)
    return unpacked


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def use_stowage(source: str) -> str:
    """Return a test module's ``source`` with stowage's classes in place of Django's."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    verbatim = {
        line
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in VERBATIM_TESTS
        for line in range(node.lineno - 1, node.end_lineno or node.lineno)
    }
    for index, line in enumerate(lines):
        if index not in verbatim:
            lines[index] = _with_stowage_paths(line)
    # Insert from the bottom up so earlier line numbers stay valid.
    imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == _DJANGO_MODULE
    ]
    for node in sorted(imports, key=lambda n: n.lineno, reverse=True):
        rebinds = [
            f"from {cls.__module__} import {cls.__name__} as {alias.asname or alias.name}"
            f"  # stowage suite: stands in for Django's {alias.name}\n"
            for alias in node.names
            if (cls := STOWAGE_CLASSES.get(alias.name)) is not None
        ]
        assert node.end_lineno is not None
        lines[node.end_lineno : node.end_lineno] = rebinds
    return "".join(lines)


def _with_stowage_paths(line: str) -> str:
    for name, cls in STOWAGE_CLASSES.items():
        for quote in "\"'":
            line = line.replace(
                f"{quote}{_DJANGO_MODULE}.{name}{quote}", f"{quote}{_dotted(cls)}{quote}"
            )
    return line


def _prepare(source_tests: Path, work: Path, *, stowage_classes: bool) -> Path:
    tests = work / "tests"
    shutil.copytree(source_tests, tests)
    shutil.copyfile(_SETTINGS, tests / _SETTINGS.name)
    if stowage_classes:
        for module in sorted((tests / "file_storage").glob("*.py")):
            text = module.read_text(encoding="utf-8")
            module.write_text(use_stowage(text), encoding="utf-8")
    return tests


def run_file_storage_tests(*, stowage_classes: bool, source_tests: Path | None = None) -> SuiteRun:
    """Run Django's ``file_storage`` tests once, on Django's classes or stowage's."""
    import time

    source_tests = source_tests or django_tests_dir()
    with tempfile.TemporaryDirectory(prefix="file-storage-suite-") as work:
        tests = _prepare(source_tests, Path(work), stowage_classes=stowage_classes)
        results_file = Path(work) / "results.json"
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["STOWAGE_SUITE_RESULTS"] = str(results_file)
        # Django's tests must import stowage from this checkout.
        project = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "runtests.py",
            "file_storage",
            "--parallel",
            "1",
            "--noinput",
            "--settings",
            _SETTINGS.stem,
        ]
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=tests,
            env=env,
            capture_output=True,
            text=True,
            timeout=_SUITE_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
        output = done.stdout + done.stderr
        if not results_file.is_file():
            raise SuiteError(
                f"runtests.py file_storage wrote no results (exit {done.returncode}):\n{output}"
            )
        results = json.loads(results_file.read_text(encoding="utf-8"))
    return SuiteRun(results=results, output=output, seconds=seconds)
