"""Throw generated hostile names at a stowage storage and check nothing escapes.

Names mix traversal parts, absolute prefixes, backslashes, NUL and other
control characters, overlong parts, unicode in several normalisation forms,
lookalike dots and leading dots and slashes. Every storage operation must
either work inside ``location`` or give its documented refusal:
``SuspiciousFileOperation`` for a name the rules refuse, ``FileNotFoundError``
for a name that is simply absent (reads, sizes, listings), stowage's
``UnsupportedOperation`` from ``url()`` on a backend without URLs. Any
other exception fails the test.

Afterwards nothing the backend can reach outside ``location`` may have been
created, changed or deleted. What it can reach is a :class:`Reach`: by
default the driver's whole namespace (for an object store the whole bucket
or container, listed with no location); a fixtures class whose driver is
rooted in a directory (local files, an SFTP, FTP or WebDAV server) supplies
``hostile_reach`` over that directory's parents, so files above the driver's
own root are watched too. Sentinel files sit at several depths: at the top
of the reach, above ``location``, in a sibling whose name begins like it, at
``location`` and below it. Every URL ``url()`` gives must stay under the
storage's base: no path segment that decodes to ``.`` or ``..``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.exceptions import UnsupportedOperation
from stowage.testing.report import CHECKED, record

__all__ = ["HostileNamesContract", "Reach", "hostile_names"]

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


def hostile_names() -> st.SearchStrategy[str]:
    """Return a strategy of names built to escape a storage location."""
    part = st.one_of(st.sampled_from(_PARTS), st.text(min_size=1, max_size=8))
    separator = st.sampled_from(["/", "\\", "//", "/./", "\\..\\"])
    joined = st.lists(st.tuples(part, separator), min_size=1, max_size=5).map(
        lambda pairs: "".join(p + s for p, s in pairs)[:-1] or "."
    )
    prefix = st.sampled_from(["", "/", "\\", "//", "./", "../", "C:\\", "\\\\host\\share\\"])
    return st.tuples(prefix, joined).map("".join)


#: Where the jailed storage lives, below the storage's own location.
_JAIL = "upper/jail"
#: Sentinels, relative to the storage's location (the first one: to the top of the reach).
_SENTINELS = (
    "sentinel-above-location.txt",
    "upper/sentinel-above-jail.txt",
    "upper/jail-twin/sentinel-sibling.txt",
    "upper/jail/sentinel-at-jail.txt",
    "upper/jail/deep/er/sentinel-below-jail.txt",
)
_TOP_SENTINEL = "sentinel-top-of-reach.txt"

#: What each operation may raise instead of working: its documented refusals.
_REFUSALS: dict[str, tuple[type[BaseException], ...]] = {
    "save": (SuspiciousFileOperation,),
    "exists": (SuspiciousFileOperation,),
    "open": (SuspiciousFileOperation, FileNotFoundError),
    "size": (SuspiciousFileOperation, FileNotFoundError),
    "listdir": (SuspiciousFileOperation, FileNotFoundError),
    "url": (SuspiciousFileOperation, UnsupportedOperation),
    "delete": (SuspiciousFileOperation,),
}


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


class Reach:
    """Everything a backend can reach, seen from outside it.

    With only ``driver``, the reach is the driver's whole namespace. With
    ``root``, it is that directory on this machine, in which the driver's
    own root is ``prefix``: files there are listed from the disk, and
    files are planted through the driver inside ``prefix`` (so a server
    that runs as another user owns them) and on the disk above it.
    """

    def __init__(self, driver: Any, *, root: Path | str | None = None, prefix: str = "") -> None:
        self.driver = driver
        self.root = None if root is None else Path(root)
        self.prefix = prefix.strip("/")
        if self.root is None and self.prefix:
            raise ValueError("a prefix needs the root directory it is inside")

    def key(self, path: str) -> str | None:
        """Return the driver key of a reach ``path``, or None when it lies above the driver."""
        if not self.prefix:
            return path
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1 :]
        return None

    def write(self, path: str, data: bytes) -> None:
        """Put ``data`` at ``path``, relative to the top of the reach."""
        from io import BytesIO

        key = self.key(path)
        if key is not None:
            self.driver.put(key, BytesIO(data), size=len(data))
            return
        assert self.root is not None
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def files(self) -> dict[str, str]:
        """Return every file of the reach, path to a fingerprint of its content.

        On a disk, directories count too (as ``path/``): a directory made
        outside the location is an escape even if it holds nothing.
        """
        from stowage.drivers.base import ObjectInfo

        if self.root is None:
            return {
                entry.key: f"{entry.size}:{entry.etag}:{entry.modified}"
                for entry in self.driver.list("", recursive=True)
                if isinstance(entry, ObjectInfo)
            }
        found: dict[str, str] = {}
        for directory, subdirectories, names in os.walk(self.root):
            for name in subdirectories:
                path = os.path.join(directory, name)
                found[os.path.relpath(path, self.root).replace(os.sep, "/") + "/"] = "directory"
            for name in names:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                relative = os.path.relpath(path, self.root).replace(os.sep, "/")
                found[relative] = f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
        return found


class _Jail:
    """The storage confined below its location, and the watch over everything else."""

    def __init__(self, storage: Any, reach: Reach) -> None:
        from stowage import names

        self.storage = copy.copy(storage)
        outer = storage._location
        self.storage._location = names.join_key(outer, _JAIL)
        self.reach = reach
        driver_location = _join(reach.prefix, outer)
        self.inside = _join(driver_location, _JAIL) + "/"
        self.sentinels = {_TOP_SENTINEL, *(_join(driver_location, s) for s in _SENTINELS)}
        for path in sorted(self.sentinels):
            reach.write(path, f"sentinel {path}".encode())
        #: The URL of a plain name, without its query: None where url() is refused.
        self.base = self._plain_url()

    def _plain_url(self) -> Any:
        try:
            url = self.storage.url("x.file")
        except UnsupportedOperation:
            return None
        return urlsplit(url)._replace(query="", fragment="")

    def watched(self) -> dict[str, str]:
        """Return the files outside the jail, and the sentinels inside it."""
        return {
            path: mark
            for path, mark in self.reach.files().items()
            if not path.startswith(self.inside) or path in self.sentinels
        }

    def check_url(self, url: str) -> None:
        """Check that ``url`` stays under the storage's base URL."""
        assert self.base is not None, f"url() gave {url!r} but refuses plain names"
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (self.base.scheme, self.base.netloc), url
        base_path = self.base.path[: -len("x.file")]
        # The location itself ("." names it) or anything below it.
        inside = parts.path.startswith(base_path) or parts.path == base_path.rstrip("/")
        assert inside, f"{url!r} leaves {base_path!r}"
        # Servers resolve dot segments, some after decoding %2e: none may be left.
        segments = [unquote(segment) for segment in parts.path.split("/")]
        assert not {".", ".."} & set(segments), f"{url!r} holds a dot segment"
        assert "\\" not in unquote(parts.path), f"{url!r} holds a backslash"


class HostileNamesContract:
    """Property tests over names; mix into a stowage storage's test class.

    Uses the ``storage`` fixture (a stowage :class:`~stowage.Storage`); the
    tests confine it two levels below its ``location`` and watch everything
    in ``hostile_reach`` around it.
    """

    #: Generated names per test (each costs several requests on a real server).
    hostile_examples: int = 150

    @pytest.fixture
    def hostile_reach(self, storage: Any) -> Reach:
        """Return what the backend can reach: by default the driver's whole namespace."""
        return Reach(storage.driver)

    @pytest.fixture
    def jailed(self, storage: Any, hostile_reach: Reach) -> _Jail:
        """Return the storage confined to ``upper/jail`` below its location, sentinels planted."""
        return _Jail(storage, hostile_reach)

    def _check(self, jail: _Jail, name: str) -> None:
        storage = jail.storage
        before = jail.watched()
        operations: dict[str, Callable[[], object]] = {
            "save": lambda: storage.save(name, ContentFile(b"hostile")),
            "exists": lambda: storage.exists(name),
            "open": lambda: storage.open(name).read(),
            "size": lambda: storage.size(name),
            "listdir": lambda: storage.listdir(name),
            "url": lambda: jail.check_url(storage.url(name)),
            "delete": lambda: storage.delete(name),
        }
        for label, operation in operations.items():
            try:
                operation()
            except _REFUSALS[label]:
                pass
        assert jail.watched() == before, f"{name!r} changed files outside the location"

    def test_hostile_names_never_escape_location(self, jailed: _Jail) -> None:
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
        detail = "url() checked" if jailed.base is not None else "url() refused"
        record(self, "hostile names", CHECKED, f"{self.hostile_examples} examples, {detail}")

    @pytest.mark.parametrize(
        "name",
        [
            "../sentinel-above-jail.txt",
            "..\\sentinel-above-jail.txt",
            "../jail-twin/sentinel-sibling.txt",
            "deep/../../sentinel-above-jail.txt",
            "../../sentinel-above-location.txt",
            "/sentinel-above-location.txt",
            "./../jail-twin/sentinel-sibling.txt",
            "deep/er/../../../../../sentinel-top-of-reach.txt",
        ],
    )
    def test_known_escapes_are_refused(self, jailed: _Jail, name: str) -> None:
        storage = jailed.storage
        before = jailed.watched()
        with pytest.raises(SuspiciousFileOperation):
            storage.delete(name)
        with pytest.raises(SuspiciousFileOperation):
            storage.save(name, ContentFile(b"overwrite"))
        with pytest.raises(SuspiciousFileOperation):
            storage.open(name).read()
        if name.startswith("/") and jailed.base is not None:
            # url() strips leading slashes (Django does), which keeps it under its base.
            url = storage.url(name)
            jailed.check_url(url)
            assert url.split("?")[0] == storage.url(name.lstrip("/")).split("?")[0]
        else:
            with pytest.raises((SuspiciousFileOperation, UnsupportedOperation)) as refused:
                storage.url(name)
            assert refused.type is SuspiciousFileOperation or jailed.base is None
        assert jailed.watched() == before
        assert storage.open("sentinel-at-jail.txt").read().startswith(b"sentinel ")
