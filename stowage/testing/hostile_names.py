"""Throw generated hostile names at a stowage storage and check nothing escapes.

Names mix traversal parts, absolute prefixes, backslashes, NUL and other
control characters, overlong parts, unicode in several normalisation forms,
lookalike dots and leading dots and slashes. Every storage operation must
either work inside ``location`` or raise ``SuspiciousFileOperation`` (or
``FileNotFoundError`` for a name that is simply absent); afterwards no key
outside ``location`` may have been created, changed or deleted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

__all__ = ["HostileNamesContract", "hostile_names"]

_PARTS = [
    "..",
    ".",
    "",
    "...",
    "a",
    "b.txt",
    ".env",
    "ü",
    "e\u0301",
    "\u00e9",
    "\ufb01le",
    "\u2024\u2024",
    "\uff0e\uff0e",
    "%2e%2e",
    "..%2f",
    "\x00",
    "\n",
    "\r",
    "\x1b",
    "\x7f",
    "\u0085",
    "C:",
    "~",
    " ",
    "x" * 300,
    "\u202e",
    "\ufeff",
]

_OUTSIDE = "outside-location/sentinel.txt"


def hostile_names() -> st.SearchStrategy[str]:
    """Return a strategy of names built to escape a storage location."""
    part = st.one_of(st.sampled_from(_PARTS), st.text(min_size=1, max_size=8))
    separator = st.sampled_from(["/", "\\", "//", "/./", "\\..\\"])
    joined = st.lists(st.tuples(part, separator), min_size=1, max_size=5).map(
        lambda pairs: "".join(p + s for p, s in pairs)[:-1] or "."
    )
    prefix = st.sampled_from(["", "/", "\\", "//", "./", "../", "C:\\", "\\\\host\\share\\"])
    return st.tuples(prefix, joined).map("".join)


class HostileNamesContract:
    """Property tests over names; mix into a stowage storage's test class.

    Uses the ``storage`` fixture (a stowage :class:`~stowage.Storage`); the
    tests confine it to a ``location`` one level down and watch the keys
    beside it through the driver.
    """

    #: Generated names per test (each costs several requests on a real server).
    hostile_examples: int = 150

    @pytest.fixture
    def jailed(self, storage: Any) -> tuple[Any, Callable[[], dict[str, int]]]:
        """Return the storage confined to ``jail/`` and a snapshot of keys outside it."""
        from stowage import names
        from stowage.drivers.base import ObjectInfo

        driver = storage.driver
        outer = storage._location
        driver.put(names.join_key(outer, _OUTSIDE), ContentFile(b"sentinel"), size=8)
        jailed = copy.copy(storage)
        jailed._location = names.join_key(outer, "jail")

        def outside() -> dict[str, int]:
            return {
                entry.key: entry.size
                for entry in driver.list(outer, recursive=True)
                if isinstance(entry, ObjectInfo)
                and not entry.key.startswith(jailed._location + "/")
            }

        return jailed, outside

    def _check(self, jailed: tuple[Any, Callable[[], dict[str, int]]], name: str) -> None:
        storage, outside = jailed
        before = outside()
        operations: list[Callable[[], object]] = [
            lambda: storage.save(name, ContentFile(b"hostile")),
            lambda: storage.exists(name),
            lambda: storage.open(name).read(),
            lambda: storage.size(name),
            lambda: storage.listdir(name),
            lambda: storage.url(name),
            lambda: storage.delete(name),
        ]
        for operation in operations:
            try:
                operation()
            except (SuspiciousFileOperation, FileNotFoundError):
                pass
            except NotImplementedError:
                pass  # url() on a backend that declares it has none
            except ValueError as exc:
                # Only Django's own name validation and delete('') may say ValueError.
                if "name" not in str(exc).lower():
                    raise
        assert outside() == before

    def test_hostile_names_never_escape_location(self, jailed: Any) -> None:
        @settings(
            max_examples=self.hostile_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            database=None,
        )
        @given(name=hostile_names())
        def check(name: str) -> None:
            self._check(jailed, name)

        check()

    @pytest.mark.parametrize(
        "name",
        [
            "../outside-location/sentinel.txt",
            "..\\outside-location\\sentinel.txt",
            "jail/../../outside-location/sentinel.txt",
            "/outside-location/sentinel.txt",
            "./../outside-location/sentinel.txt",
        ],
    )
    def test_known_escapes_are_refused(self, jailed: Any, name: str) -> None:
        storage, outside = jailed
        before = outside()
        with pytest.raises(SuspiciousFileOperation):
            storage.delete(name)
        with pytest.raises(SuspiciousFileOperation):
            storage.save(name, ContentFile(b"overwrite"))
        assert outside() == before
