"""Delimited ListObjectsV2 listings on stowage's own S3 client, one page at a time.

obstore's delimited listing reads every page before it answers and keeps
each object's metadata until then; a directory of 100,000 keys held about
90 MiB above the idle process. Read here, a page is parsed, yielded and
dropped before the next is asked for, so a listing holds one page at most
(1,000 keys) beyond what its caller keeps.

Keys are asked for URL-encoded (``encoding-type=url``), so a name XML
cannot carry does not break the answer; a server that ignores the request
(its answer names no ``EncodingType``) sends them as they are.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote_plus

from stowage.drivers.base import ObjectInfo, Prefix
from stowage.drivers.s3.rest import RestClient, find_all, find_text

__all__ = ["ListedPage", "list_level", "list_page"]


@dataclass(frozen=True, slots=True)
class ListedPage:
    """One page of a delimited listing: its objects, its common prefixes, the next token."""

    objects: list[ET.Element]
    prefixes: list[str]
    following: str | None
    decode: Callable[[str], str]

    def keys(self) -> list[str]:
        """Return the page's object keys."""
        return [self.decode(find_text(entry, "Key")) for entry in self.objects]


def list_page(rest: RestClient, prefix: str, token: str | None, *, what: str) -> ListedPage:
    """Ask for one page of the listing of ``prefix`` with the delimiter ``/``."""
    query = {"list-type": "2", "prefix": prefix, "delimiter": "/", "encoding-type": "url"}
    if token:
        query["continuation-token"] = token
    root = ET.fromstring(rest.call("GET", "", query, what=what).body)
    decode = unquote_plus if find_text(root, "EncodingType") == "url" else str
    following = find_text(root, "NextContinuationToken")
    return ListedPage(
        find_all(root, "Contents"),
        [decode(find_text(entry, "Prefix")) for entry in find_all(root, "CommonPrefixes")],
        following if find_text(root, "IsTruncated") == "true" and following else None,
        decode,
    )


def list_level(rest: RestClient, directory: str, *, hidden: str) -> Iterator[ObjectInfo | Prefix]:
    """Yield the objects and subdirectories directly inside ``directory`` ("" for the root).

    The subdirectory ``hidden`` (stowage's staging prefix) and a directory
    marker (an empty object named ``directory/``) are left out.
    """
    prefix = f"{directory}/" if directory else ""
    what = f"listing {directory!r}"
    token = None
    while True:
        page = list_page(rest, prefix, token, what=what)
        for name in page.prefixes:
            if name.rstrip("/") != hidden:
                yield Prefix(name.rstrip("/"))
        for entry in page.objects:
            key = page.decode(find_text(entry, "Key"))
            if key != prefix:
                yield _object(key, entry)
        token = page.following
        if token is None:
            return


def _object(key: str, entry: ET.Element) -> ObjectInfo:
    modified = find_text(entry, "LastModified")
    etag = find_text(entry, "ETag").strip('"')
    return ObjectInfo(
        key=key,
        size=int(find_text(entry, "Size") or 0),
        modified=dt.datetime.fromisoformat(modified) if modified else None,
        etag=etag or None,
    )
