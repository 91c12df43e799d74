"""``exists()`` on S3 with one ListObjectsV2 call (see :mod:`stowage.drivers.lookup`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote_plus

from stowage.drivers.lookup import Page, exists_by_listing
from stowage.drivers.s3.rest import RestClient, find_all, find_text

__all__ = ["listed"]


def listed(rest: RestClient, key: str) -> bool:
    """Tell whether ``key`` is an object or a directory, listing the prefix ``key``.

    Keys are asked for URL-encoded (``encoding-type=url``), so a sibling
    whose name XML cannot carry does not break the answer; a server that
    ignores the request (its answer names no ``EncodingType``) sends them as
    they are.
    """
    query = {"list-type": "2", "prefix": key, "delimiter": "/", "encoding-type": "url"}
    what = f"checking whether {key!r} exists"

    def fetch(token: str | None) -> Page:
        page = dict(query, **({"continuation-token": token} if token else {}))
        root = ET.fromstring(rest.call("GET", "", page, what=what).body)
        decode = unquote_plus if find_text(root, "EncodingType") == "url" else str
        following = find_text(root, "NextContinuationToken")
        return (
            [decode(find_text(entry, "Key")) for entry in find_all(root, "Contents")],
            [decode(find_text(entry, "Prefix")) for entry in find_all(root, "CommonPrefixes")],
            following if find_text(root, "IsTruncated") == "true" and following else None,
        )

    return exists_by_listing(key, fetch)
