"""``exists()`` on S3 with one ListObjectsV2 call (see :mod:`stowage.drivers.lookup`)."""

from __future__ import annotations

from stowage.drivers.lookup import Page, exists_by_listing
from stowage.drivers.s3.listing import list_page
from stowage.drivers.s3.rest import RestClient

__all__ = ["listed"]


def listed(rest: RestClient, key: str) -> bool:
    """Tell whether ``key`` is an object or a directory, listing the prefix ``key``."""
    what = f"checking whether {key!r} exists"

    def fetch(token: str | None) -> Page:
        page = list_page(rest, key, token, what=what)
        return page.object_keys(), page.prefixes, page.following

    return exists_by_listing(key, fetch)
