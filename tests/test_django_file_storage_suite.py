"""Run Django's own ``file_storage`` tests on stowage's LocalStorage and MemoryStorage.

The suite runs twice (see :mod:`tests.django_suite.harness`): on Django's
``FileSystemStorage`` / ``InMemoryStorage``, then with stowage's classes in
their place. Every test that passes on Django's classes must pass on
stowage's, except those listed below; each listed test must really fail, so
the lists never go stale. ``DELIBERATE_DIFFERENCES`` is also the list that
docs/backends/local.md and memory.md show to users.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.django_suite.harness import SuiteRun, run_file_storage_tests

_FS = "file_storage.tests."
_MEM = "file_storage.test_inmemory_storage."
_GEN = "file_storage.test_generate_filename."

_ABSOLUTE = (
    "names are relative to the storage: an absolute path is refused (SuspiciousFileOperation) "
    "even when it points inside the storage's directory"
)
_SLASH = (
    "a base_url without a trailing slash is refused (ImproperlyConfigured) instead of "
    "silently completed, so a typo in settings is seen"
)
_FLAT = (
    "names are flat keys, as on the object stores it stands in for in tests: a directory "
    "exists only through the files under it, has no times of its own, and deleting one "
    "does nothing"
)
_LAZY_OPEN = (
    "open() does no I/O until the first read (as every stowage backend), so a missing "
    "name raises FileNotFoundError at the first read, and opening is not an access"
)

#: Tests that fail on stowage on purpose, by test id, with the reason.
DELIBERATE_DIFFERENCES: dict[str, str] = {
    **{
        f"{_FS}{case}.test_delete_deletes_directories": _ABSOLUTE
        for case in (
            "FileStorageTests",
            "CustomStorageTests",
            "DiscardingFalseContentStorageTests",
            "OverwritingStorageOSOpenFlagsTests",
            "OverwritingStorageTests",
        )
    },
    **{
        f"{_FS}{case}.test_base_url": _SLASH
        for case in (
            "FileStorageTests",
            "CustomStorageTests",
            "DiscardingFalseContentStorageTests",
            "OverwritingStorageOSOpenFlagsTests",
            "OverwritingStorageTests",
        )
    },
    f"{_MEM}MemoryStorageIOTests.test_url": _SLASH,
    f"{_MEM}MemoryStorageIOTests.test_delete": _FLAT,
    f"{_MEM}MemoryStorageIOTests.test_file_node_cannot_have_children": _FLAT,
    f"{_MEM}MemoryStorageIOTests.test_open_dir_as_file": _FLAT,
    f"{_MEM}MemoryStorageTimesTests.test_directory_times_changing_after_file_creation": _FLAT,
    f"{_MEM}MemoryStorageTimesTests.test_directory_times_changing_after_file_deletion": _FLAT,
    f"{_MEM}MemoryStorageIOTests.test_open_missing_file": _LAZY_OPEN,
    f"{_MEM}MemoryStorageTimesTests.test_file_accessed_time": _LAZY_OPEN,
    f"{_MEM}MemoryStorageTimesTests.test_file_created_time": (
        "a file opened with 'r' is read-only, as a real file is; InMemoryStorage lets it be written"
    ),
    f"{_MEM}InMemoryStorageTests.test_setting_changed": (
        "location is a prefix of the stored names, not a directory under MEDIA_ROOT "
        "(path() is unsupported), so there is no base_location"
    ),
    f"{_MEM}InMemoryStorageTests.test_deconstruction": (
        "options are type-checked: the test passes file modes as strings ('0o755'), "
        "which are refused"
    ),
}

#: Differences not yet fixed, by test id, with the cause (each must still fail).
KNOWN_GAPS: dict[str, str] = {}


@pytest.fixture(scope="module")
def runs() -> tuple[SuiteRun, SuiteRun]:
    """Run the suite on Django's classes, then on stowage's."""
    return (
        run_file_storage_tests(stowage_classes=False),
        run_file_storage_tests(stowage_classes=True),
    )


def _describe(run: SuiteRun, test: str) -> str:
    found = run.results.get(test)
    if found is None:
        return f"{test}: did not run (its module failed to import?)"
    return f"{test}: {found['outcome']}: {found['detail']}"


def test_stowage_passes_what_django_passes(runs: tuple[SuiteRun, SuiteRun]) -> None:
    """Every test passing on Django's storages passes on stowage's, bar the listed ones."""
    on_django, on_stowage = runs
    passing = on_django.ids("pass")
    assert len(passing) > 150, f"Django's own run passed only {on_django.counts()}"
    listed = DELIBERATE_DIFFERENCES.keys() | KNOWN_GAPS.keys()
    broken = sorted(passing - on_stowage.ids("pass") - listed)
    assert not broken, (
        f"{len(broken)} of Django's file_storage tests fail on stowage "
        f"(Django: {on_django.counts()}, stowage: {on_stowage.counts()}):\n"
        + "\n".join(_describe(on_stowage, test) for test in broken)
    )


def test_listed_differences_still_fail(runs: tuple[SuiteRun, SuiteRun]) -> None:
    """Each listed test passes on Django's storages and fails on stowage's."""
    on_django, on_stowage = runs
    # Tests of this Django release only: some classes came or went between releases.
    listed = (DELIBERATE_DIFFERENCES.keys() | KNOWN_GAPS.keys()) & on_django.results.keys()
    assert listed, "none of the listed tests exists in this Django release"
    not_on_django = sorted(listed - on_django.ids("pass"))
    assert not not_on_django, f"Listed but not passing on Django: {not_on_django}"
    now_passing = sorted(listed & on_stowage.ids("pass"))
    assert not now_passing, f"Listed but passing on stowage now, remove them: {now_passing}"


def test_docs_list_the_deliberate_differences() -> None:
    """The backend pages show every deliberate difference, and no other."""
    docs = Path(__file__).resolve().parents[1] / "docs" / "backends"
    for page, prefixes in (("local.md", (_FS, _GEN)), ("memory.md", (_MEM,))):
        text = (docs / page).read_text(encoding="utf-8")
        shown = set(re.findall(r"`(file_storage\.[\w.]+)`", text))
        expected = {test for test in DELIBERATE_DIFFERENCES if test.startswith(prefixes)}
        assert shown == expected, (
            f"docs/backends/{page} lists {sorted(shown - expected)} too many and "
            f"misses {sorted(expected - shown)}"
        )


def test_spooled_writes_spill_to_file_upload_temp_dir(tmp_path: Path) -> None:
    """A write bigger than max_memory_size spills where Django puts uploads."""
    from django.test import override_settings

    from stowage import MemoryStorage

    spill_dir = tmp_path / "uploads-tmp"
    spill_dir.mkdir()
    with override_settings(FILE_UPLOAD_TEMP_DIR=str(spill_dir)):
        handle = MemoryStorage(max_memory_size=1).open("big.bin", "wb")
        handle.write(b"more than one byte")
        # The spilled file has no name (O_TMPFILE): ask where its descriptor points.
        spilled = os.readlink(f"/proc/self/fd/{handle.file.fileno()}")
        handle.close()
    assert spilled.startswith(f"{spill_dir}/")
