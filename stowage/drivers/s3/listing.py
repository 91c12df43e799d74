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
from collections.abc import Iterator
from urllib.parse import unquote_plus

from stowage.drivers.base import ObjectInfo, Prefix
from stowage.drivers.s3.rest import RestClient, find_all, find_text
from stowage.records import record

__all__ = ["ListedPage", "level_names", "list_level", "list_page"]


@record(slots=True)
class ListedPage:
    """One page of a delimited listing: its objects, its common prefixes, the next token.

    ``namespace`` is the answer's ``{namespace}`` prefix of element names ("" for none).
    """

    objects: list[ET.Element]
    prefixes: list[str]
    following: str | None
    encoded: bool
    namespace: str

    def decode(self, name: str) -> str:
        """Return a key or prefix as stored (URL-decoded if the server encoded it)."""
        return unquote_plus(name) if self.encoded and ("%" in name or "+" in name) else name

    def object_keys(self) -> list[str]:
        """Return the page's object keys."""
        tag = f"{self.namespace}Key"
        return [self.decode(entry.findtext(tag) or "") for entry in self.objects]


def list_page(rest: RestClient, prefix: str, token: str | None, *, what: str) -> ListedPage:
    """Ask for one page of the listing of ``prefix`` with the delimiter ``/``."""
    query = {"list-type": "2", "prefix": prefix, "delimiter": "/", "encoding-type": "url"}
    if token:
        query["continuation-token"] = token
    root = ET.fromstring(rest.call("GET", "", query, what=what).body)
    following = find_text(root, "NextContinuationToken")
    page = ListedPage(
        find_all(root, "Contents"),
        [],
        following if find_text(root, "IsTruncated") == "true" and following else None,
        find_text(root, "EncodingType") == "url",
        root.tag[: root.tag.index("}") + 1] if root.tag[:1] == "{" else "",
    )
    page.prefixes.extend(
        page.decode(find_text(entry, "Prefix")) for entry in find_all(root, "CommonPrefixes")
    )
    return page


def list_level(rest: RestClient, directory: str, *, hidden: str) -> Iterator[ObjectInfo | Prefix]:
    """Yield the objects and subdirectories directly inside ``directory`` ("" for the root).

    The subdirectory ``hidden`` (stowage's staging prefix) and a directory
    marker (an empty object named ``directory/``) are left out.
    """
    prefix = f"{directory}/" if directory else ""
    for page, subdirectories in _pages(rest, directory, hidden):
        yield from (Prefix(name) for name in subdirectories)
        ns = page.namespace
        tags = (f"{ns}Key", f"{ns}Size", f"{ns}LastModified", f"{ns}ETag")
        for entry in page.objects:
            key = page.decode(entry.findtext(tags[0]) or "")
            if key != prefix:
                yield _object(key, entry, tags)


def level_names(rest: RestClient, directory: str, *, hidden: str) -> Iterator[tuple[str, bool]]:
    """Yield :func:`list_level`'s keys, each with whether it is a subdirectory, and nothing else."""
    prefix = f"{directory}/" if directory else ""
    for page, subdirectories in _pages(rest, directory, hidden):
        yield from ((name, True) for name in subdirectories)
        yield from ((key, False) for key in page.object_keys() if key != prefix)


def _pages(rest: RestClient, directory: str, hidden: str) -> Iterator[tuple[ListedPage, list[str]]]:
    """Yield each page of ``directory``'s listing with its subdirectories, ``hidden`` left out."""
    prefix = f"{directory}/" if directory else ""
    what = f"listing {directory!r}"
    token = None
    while True:
        page = list_page(rest, prefix, token, what=what)
        names = (name.rstrip("/") for name in page.prefixes)
        yield page, [name for name in names if name != hidden]
        token = page.following
        if token is None:
            return


def _object(key: str, entry: ET.Element, tags: tuple[str, str, str, str]) -> ObjectInfo:
    """Describe one ``Contents`` entry; ``tags`` name its Key, Size, LastModified and ETag."""
    modified = entry.findtext(tags[2])
    etag = (entry.findtext(tags[3]) or "").strip('"')
    return ObjectInfo(
        key=key,
        size=int(entry.findtext(tags[1]) or 0),
        modified=dt.datetime.fromisoformat(modified) if modified else None,
        etag=etag or None,
    )
