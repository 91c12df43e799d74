"""Answer ``exists()`` on an object store with one listing instead of two requests.

A name exists when an object is stored under it or when it is a directory
(objects lie below ``name/``). Asked one after the other (a HEAD, then a
listing of ``name/``), a missing name costs two round trips. One listing of
the prefix ``name`` with the delimiter ``/`` answers both: the object
``name`` is the first entry if it exists (every longer name sorts after it),
and the directory shows as the common prefix ``name/``. Between them come
only siblings whose next character sorts before ``/`` (``name-2``,
``name.bak``, each directory of them rolled up into one prefix); once a page
reaches past ``name/`` nothing later can match, so a long run of such
siblings costs more pages only until then.

Services list keys in the byte order of their UTF-8 encoding, which is the
order of Python's ``str`` comparison. The ``exists_by_listing`` option
(:class:`~stowage.drivers.options.ListingOptions`) turns this off; a bucket
that refuses listings (a policy granting reads but not listing) turns it off
for the driver, with a warning, after the first refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

__all__ = ["Page", "exists_by_listing", "listing_refused", "settles_exists"]

#: One page of a delimited listing: its object names, its common prefixes and
#: the token of the next page (None on the last).
Page = tuple[Iterable[str], Iterable[str], str | None]

logger = logging.getLogger("stowage")


def settles_exists(key: str, names: Iterable[str], prefixes: Iterable[str]) -> bool | None:
    """Read one page of the listing of ``key`` (delimiter ``/``) for ``exists()``.

    Return True when the page shows the object ``key`` or the directory
    ``key/``; False when it shows an entry sorting after ``key/``, so no
    later page can; None when only the next page can tell (on the last
    page: the name is missing).
    """
    directory = f"{key}/"
    beyond = False
    for name in names:
        if name == key:
            return True
        beyond = beyond or name > directory
    for prefix in prefixes:
        if prefix == directory:
            return True
        beyond = beyond or prefix > directory
    return False if beyond else None


def exists_by_listing(key: str, fetch: Callable[[str | None], Page]) -> bool:
    """Tell whether ``key`` exists, reading pages from ``fetch(token)`` until one settles it.

    ``fetch`` lists the prefix ``key`` with the delimiter ``/``, from the
    page ``token`` names (None: the first).
    """
    token = None
    while True:
        names, prefixes, token = fetch(token)
        found = settles_exists(key, names, prefixes)
        if found is not None or token is None:
            return bool(found)


def listing_refused(where: str) -> None:
    """Warn that ``where`` refused the listing of ``exists()``, which now asks for the object."""
    logger.warning(
        "%s refused a listing: exists() asks for the object first from now on (for a "
        "missing name it then lists below it, which may be refused too). Allow listing the "
        "bucket, or set exists_by_listing=False to skip the refused request.",
        where,
    )
