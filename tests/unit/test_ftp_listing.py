"""FTP listing facts read into entries: RFC 3659 times in every form servers send."""

from __future__ import annotations

import datetime as dt

import pytest

from stowage.drivers.ftp.listing import entry_from_facts, parse_time

__all__: list[str] = []

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("20261204123456", dt.datetime(2026, 12, 4, 12, 34, 56, tzinfo=UTC)),
        (" 20261204123456\r\n", dt.datetime(2026, 12, 4, 12, 34, 56, tzinfo=UTC)),
        ("20261204123456.5", dt.datetime(2026, 12, 4, 12, 34, 56, 500000, tzinfo=UTC)),
        ("19991231235959.123456789", dt.datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=UTC)),
        # Shorter than RFC 3659 allows: read as strptime reads it, as before.
        ("2026120412345", dt.datetime(2026, 12, 4, 12, 34, 5, tzinfo=UTC)),
    ],
)
def test_times_are_read_in_utc(value: str, moment: dt.datetime) -> None:
    assert parse_time(value) == moment


@pytest.mark.parametrize(
    "value",
    ["", "x", "20261304123456", "20260230120000", "20261231235960", "2026-12-04", "٢٠٢٦١٢٠٤١٢٣٤٥٦"],
)
def test_a_time_that_is_no_date_is_none(value: str) -> None:
    assert parse_time(value) is None


def test_an_entry_keeps_its_modify_fact() -> None:
    entry = entry_from_facts("small.txt", "type=file;size=1024;modify=20261204123456;")
    assert (entry.name, entry.is_dir, entry.size) == ("small.txt", False, 1024)
    assert entry.modified == dt.datetime(2026, 12, 4, 12, 34, 56, tzinfo=UTC)
