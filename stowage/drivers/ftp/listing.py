"""Parse what an FTP server says about names: MLSD and MLST facts, LIST lines.

``MLSD`` and ``MLST`` give machine-readable facts (RFC 3659); a server
without them is listed with ``LIST``, whose lines this module reads in the
Unix and the DOS formats and refuses in any other.
"""

from __future__ import annotations

import datetime as dt
import re

from stowage.records import record

__all__ = ["Entry", "entry_from_facts", "entry_from_list", "entry_from_mlsd", "parse_time"]

_UNIX_LINE = re.compile(
    r"^(?P<kind>[-dlbcps])\S{9}\S*\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)$"
)
_DOS_LINE = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}(?:[AP]M)?\s+(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)$"
)


@record(slots=True)
class Entry:
    """One name in a directory listing."""

    name: str
    is_dir: bool
    size: int = 0
    modified: dt.datetime | None = None


def parse_time(value: str) -> dt.datetime | None:
    """Parse an RFC 3659 time (``YYYYMMDDHHMMSS[.fff]``, UTC)."""
    whole, _, fraction = value.strip().partition(".")
    try:
        if len(whole) == 14 and whole.isascii() and whole.isdigit():
            # The form every server sends, read without strptime (a tenth of its cost).
            moment = dt.datetime(
                int(whole[:4]),
                int(whole[4:6]),
                int(whole[6:8]),
                int(whole[8:10]),
                int(whole[10:12]),
                int(whole[12:]),
                tzinfo=dt.UTC,
            )
        else:
            moment = dt.datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if fraction.isdigit():
        moment += dt.timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


def _parse_facts(text: str) -> dict[str, str]:
    facts = {}
    for fact in text.split(";"):
        name, sep, value = fact.partition("=")
        if sep:
            facts[name.strip().lower()] = value
    return facts


def entry_from_facts(name: str, facts_text: str) -> Entry:
    """Describe ``name`` from its MLST/MLSD facts (``type=file;size=3;modify=…``)."""
    facts = _parse_facts(facts_text)
    size = facts.get("size", "0")
    return Entry(
        name=name,
        is_dir=facts.get("type", "").lower() in ("dir", "cdir", "pdir"),
        size=int(size) if size.isdigit() else 0,
        modified=parse_time(facts.get("modify", "")),
    )


def entry_from_mlsd(line: str) -> Entry | None:
    """Parse one MLSD line; None for the directory itself and its parent."""
    facts_text, _, name = line.partition(" ")
    kind = _parse_facts(facts_text).get("type", "").lower()
    if kind in ("cdir", "pdir") or name in ("", ".", ".."):
        return None
    return entry_from_facts(name, facts_text)


def entry_from_list(line: str) -> Entry | None:
    """Parse one LIST line (Unix or DOS format); raise ValueError for another format."""
    if match := _UNIX_LINE.match(line):
        name = match["name"]
        if match["kind"] == "l":
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            return None
        return Entry(name=name, is_dir=match["kind"] == "d", size=int(match["size"]))
    if match := _DOS_LINE.match(line):
        name = match["name"]
        if name in (".", ".."):
            return None
        size = match["size"]
        return Entry(name=name, is_dir=bool(match["dir"]), size=int(size) if size else 0)
    if line.startswith("total "):
        return None
    raise ValueError(f"unrecognised LIST line {line[:60]!r}")
