"""One listing answers exists(): which pages settle it."""

from __future__ import annotations

from stowage.drivers.lookup import settles_exists


def test_the_object_itself_settles_it() -> None:
    assert settles_exists("a/name", ["a/name", "a/name-2"], []) is True


def test_the_directory_settles_it() -> None:
    assert settles_exists("a/name", ["a/name-2", "a/name.bak"], ["a/name/"]) is True


def test_siblings_sorting_before_the_directory_leave_it_open() -> None:
    # A later page may still hold "a/name/": only the next page can tell.
    assert settles_exists("a/name", ["a/name 2", "a/name-2", "a/name.bak"], ["a/name-x/"]) is None
    assert settles_exists("a/name", [], []) is None


def test_an_entry_past_the_directory_settles_it_as_missing() -> None:
    assert settles_exists("a/name", ["a/name.bak", "a/namez"], []) is False
    assert settles_exists("a/name", [], ["a/name0/"]) is False


def test_order_is_by_code_point_as_services_sort_utf8() -> None:
    # "é" (U+00E9) sorts after "/" in UTF-8 bytes and in code points alike.
    assert settles_exists("a/name", ["a/nameé"], []) is False
