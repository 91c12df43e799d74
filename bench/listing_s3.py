"""An S3 endpoint that only lists: one bucket of empty objects, paged from a sorted list.

moto lists a page by scanning and sorting the whole bucket: at 10,000 keys a
page takes it about 0.2 s, at 100,000 about ten times that, so one listing of
100,000 keys would take minutes of moto's time, ten of them per row. This
server answers ListObjects (version 1, which django-storages' ``listdir``
sends) and ListObjectsV2 (obstore's) for the bucket :data:`BUCKET`, holding
``KEYS`` keys ``many/00000``, ``many/00001``, … (at most 100,000) and
finding each page's start by bisection, so a listing row shows what each
client spends; a HEAD of a key answers as for an empty object. It checks no
signature. Any other request is answered 501.

Run as ``python -m bench.listing_s3 PORT KEYS``.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote
from xml.sax.saxutils import escape

from bench._servers import start_s3_module

if TYPE_CHECKING:
    from tests.servers.moto import MotoServer

__all__ = ["BUCKET", "page", "serve", "start"]

#: The one bucket the server holds.
BUCKET = "listing"
_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'
_EMPTY_ETAG = escape(_ETAG, {'"': "&quot;"})
_MODIFIED = "2026-01-01T00:00:00.000Z"
_HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"


def page(keys: list[str], query: dict[str, str]) -> bytes:
    """Return the ListObjects (or, with ``list-type=2``, ListObjectsV2) answer to ``query``."""
    v2 = query.get("list-type") == "2"
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    limit = min(int(query.get("max-keys", "1000")), 1000)
    if v2:
        after = query.get("continuation-token") or query.get("start-after", "")
    else:
        after = query.get("marker", "")
    encode: Callable[[str], str] = (
        (lambda text: quote(text, safe="/")) if query.get("encoding-type") == "url" else escape
    )
    index = bisect.bisect_left(keys, prefix)
    if after:
        index = max(index, bisect.bisect_right(keys, after))
    contents: list[str] = []
    prefixes: list[str] = []
    last = ""
    while index < len(keys) and len(contents) + len(prefixes) < limit:
        key = keys[index]
        if not key.startswith(prefix):
            break
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[: cut + len(delimiter)]
            prefixes.append(common)
            # Past every key under this common prefix.
            index = bisect.bisect_left(keys, common[:-1] + chr(ord(common[-1]) + 1))
            last = keys[index - 1]
            continue
        contents.append(key)
        last = key
        index += 1
    truncated = index < len(keys) and keys[index].startswith(prefix)
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_NAMESPACE}">',
        f"<Name>{BUCKET}</Name><Prefix>{encode(prefix)}</Prefix><MaxKeys>{limit}</MaxKeys>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if delimiter:
        parts.append(f"<Delimiter>{encode(delimiter)}</Delimiter>")
    if query.get("encoding-type") == "url":
        parts.append("<EncodingType>url</EncodingType>")
    if v2:
        parts.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
    elif truncated:
        parts.append(f"<NextMarker>{encode(last)}</NextMarker>")
    parts.extend(
        f"<Contents><Key>{encode(key)}</Key><LastModified>{_MODIFIED}</LastModified>"
        f"<ETag>{_EMPTY_ETAG}</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass>"
        "</Contents>"
        for key in contents
    )
    parts.extend(
        f"<CommonPrefixes><Prefix>{encode(common)}</Prefix></CommonPrefixes>" for common in prefixes
    )
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


def _application(keys: list[str]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "").strip("/")
        if environ["REQUEST_METHOD"] == "HEAD" and path.startswith(f"{BUCKET}/"):
            key = path.removeprefix(f"{BUCKET}/")
            at = bisect.bisect_left(keys, key)
            found = at < len(keys) and keys[at] == key
            headers = [("Content-Length", "0"), ("ETag", _ETAG), ("Last-Modified", _HTTP_DATE)]
            start_response("200 OK" if found else "404 Not Found", headers)
            return [b""]
        if environ["REQUEST_METHOD"] != "GET" or path != BUCKET:
            start_response("501 Not Implemented", [("Content-Length", "0")])
            return [b""]
        raw = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        body = page(keys, {name: values[0] for name, values in raw.items()})
        start_response(
            "200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def serve(port: int, count: int) -> None:
    """Serve ``count`` keys on 127.0.0.1:``port`` until terminated."""
    from cheroot import wsgi

    keys = [f"many/{i:05d}" for i in range(count)]
    server = wsgi.Server(("127.0.0.1", port), _application(keys), numthreads=4)
    try:
        server.start()
    finally:
        server.stop()


def start(log_dir: Path, count: int) -> MotoServer:
    """Start the server with ``count`` keys in a child process; return it as an S3 server."""
    return start_s3_module("listing_s3", log_dir, str(count))


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
