"""One listing answers exists(): which pages settle it."""

from __future__ import annotations

from collections.abc import Callable

from stowage.drivers.lookup import Page, exists_by_listing, settles_exists


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


def _pages(
    *pages: tuple[list[str], list[str]],
) -> tuple[list[str | None], Callable[[str | None], Page]]:
    asked: list[str | None] = []

    def fetch(token: str | None) -> Page:
        asked.append(token)
        index = int(token or 0)
        names, prefixes = pages[index]
        return names, prefixes, str(index + 1) if index + 1 < len(pages) else None

    return asked, fetch


def test_pages_are_read_until_one_settles_it() -> None:
    asked, fetch = _pages((["a/name-2"], []), (["a/name.bak"], ["a/name/"]), (["a/namez"], []))
    assert exists_by_listing("a/name", fetch) is True
    assert asked == [None, "1"]  # the third page is never asked for


def test_the_last_page_unsettled_means_missing() -> None:
    asked, fetch = _pages((["a/name-2"], []), (["a/name.bak"], []))
    assert exists_by_listing("a/name", fetch) is False
    assert asked == [None, "1"]
