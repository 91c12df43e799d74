"""Choose the Content-Type a file is stored with.

The name decides first: a type sent by a client (an upload's Content-Type)
must not turn ``x.png`` into ``text/html`` served from the site's origin. A
name ending in a compression (``x.css.gz``) is that archive, not its inner
type sent compressed: stored so, it downloads as what its name says and is
never compressed twice.
"""

from __future__ import annotations

import mimetypes
from typing import Any

__all__ = ["content_type_for"]

#: Content-Type of a name whose last extension is a compression (mimetypes' encodings).
_ARCHIVE_TYPES = {
    "gzip": "application/gzip",
    "br": "application/x-brotli",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "zstd": "application/zstd",
}


def content_type_for(name: str, content: Any, default: str) -> str:
    """Return the Content-Type of ``name``; else ``content.content_type``; else ``default``."""
    guessed, encoding = mimetypes.guess_type(name)
    if encoding is not None:
        guessed = _ARCHIVE_TYPES.get(encoding, "application/octet-stream")
    given = getattr(content, "content_type", None)
    return guessed or (given if isinstance(given, str) and given else None) or default
