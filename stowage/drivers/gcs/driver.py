"""Answer the driver contract for one Google Cloud Storage bucket.

Reads, writes and signing live in their own modules; this one lists,
deletes and copies (the rewrite API, in as many calls as the service asks),
and serves direct uploads: a resumable upload session started for the
browser, and the bucket's CORS rules. Every request runs under the retry
policy through the :class:`~stowage.drivers.gcs.connection.Connection`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from stowage.drivers import _gzip
from stowage.drivers.base import (
    URL_SAFE,
    Capability,
    Download,
    Driver,
    ObjectInfo,
    Prefix,
    Readable,
    in_thread,
    signed_seconds,
)
from stowage.drivers.gcs.connection import Connection
from stowage.drivers.gcs.json_api import ApiError
from stowage.drivers.gcs.options import DEFAULT_CHUNK, GCSOptions
from stowage.drivers.gcs.reading import Reader, resource_info
from stowage.drivers.gcs.signing import Signer
from stowage.drivers.gcs.uploads import Uploader
from stowage.drivers.lookup import Page, exists_by_listing, listing_refused
from stowage.exceptions import AccessDenied, NotFound

__all__ = ["GCSDriver"]

#: What a listing asks of each object: what ObjectInfo holds, not links, ids or checksums.
_LISTED_FIELDS = (
    "items(name,size,updated,timeCreated,etag,contentType,contentEncoding,cacheControl,"
    "metadata),prefixes,nextPageToken"
)

#: One page of a listing: its objects' resources, its "directories", the next page's token.
_Page = tuple[list[dict[str, Any]], list[str], str | None]


def _list_page(
    conn: Connection,
    prefix: str,
    delimiter: str | None,
    token: str | None,
    fields: str | None = None,
    max_results: int | None = None,
) -> _Page:
    """Fetch one page of a listing, from ``token`` (None: the first page).

    The JSON answer is read as it comes: the client's own listing makes a
    ``Blob`` of every object, with its ACL helpers, which cost more than the
    request itself for a page of a thousand. ``fields`` narrows what the
    service sends (a partial response). It is sent by
    :mod:`~stowage.drivers.gcs.json_api`.
    """
    path, query = conn.path_of()
    query.update(prefix=prefix, projection="noAcl")
    if delimiter:
        query["delimiter"] = delimiter
    if token:
        query["pageToken"] = token
    if fields:
        query["fields"] = fields
    if max_results:
        query["maxResults"] = str(max_results)
    page = conn.json.get(f"{path}/o", query)
    return page.get("items", []), page.get("prefixes", []), page.get("nextPageToken")


class GCSDriver(Driver[GCSOptions]):
    """Keep each key as an object in one Google Cloud Storage bucket."""

    options_class = GCSOptions
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.SIGN,
            Capability.SIGN_CUSTOM_DOMAIN,
            Capability.PUBLIC_URL,
            Capability.SERVER_COPY,
            Capability.CREATED_TIME,
            Capability.OBJECT_PARAMETERS,
        }
    )
    max_key_bytes = 1024

    def __init__(self, options: GCSOptions) -> None:
        super().__init__(options)
        self._connection = Connection(options)
        chunk = options.blob_chunk_size or DEFAULT_CHUNK
        self._reader = Reader(self._connection, chunk)
        self._uploader = Uploader(self._connection, self._reader, chunk)
        self._signer = Signer(self._connection)
        #: Set once the bucket refused the listing of exists() (no storage.objects.list).
        self._listing_refused = False

    def close(self) -> None:
        """Close the HTTP connections; a later call opens new ones."""
        self._connection.close()

    # -- required -----------------------------------------------------------------

    def put_adds_to(self, content_type: str) -> bool:
        """Tell whether a put adds properties, an ACL or compression to the body."""
        options = self.options
        compress = options.gzip and _gzip.wants_gzip(content_type, options.gzip_content_types)
        return bool(options.object_parameters) or options.default_acl is not None or compress

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> ObjectInfo:
        """Upload ``stream`` in one request or, past 8 MiB, in resumable chunks."""
        return self._uploader.put(
            key,
            stream,
            size=size,
            content_type=content_type,
            if_absent=if_absent,
            cache_control=cache_control,
            metadata=metadata,
            object_parameters=object_parameters,
        )

    async def aput(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_parameters: Mapping[str, Any] | None = None,
    ) -> ObjectInfo:
        """Do :meth:`put` on a worker thread, per-file ``object_parameters`` included."""
        return await in_thread(
            self.put,
            key,
            stream,
            size=size,
            content_type=content_type,
            if_absent=if_absent,
            cache_control=cache_control,
            metadata=metadata,
            object_parameters=object_parameters,
        )

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Read ``key`` with ranged requests, each at most ``blob_chunk_size`` bytes."""
        return self._reader.get(key, start, end)

    def head(self, key: str) -> ObjectInfo:
        """Describe the object at ``key`` from its metadata."""
        resource = self._reader.metadata(key)
        return resource_info(resource, size=self._reader.plain_size(resource))

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        conn = self._connection
        path, query = conn.path_of(key)

        def delete() -> None:
            # A retry after a delete that landed finds nothing: done all the same.
            try:
                conn.json.delete(path, query)
            except ApiError as exc:
                if exc.code != 404:
                    raise

        conn.call(conn.what("deleting", key), delete)

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List one directory level (delimiter "/") or everything below, page by page."""
        for items, prefixes in self._pages(prefix, recursive=recursive):
            yield from (resource_info(item) for item in items)
            yield from (Prefix(name) for name in prefixes)

    def list_names(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """List one level's names only, without describing each object."""
        for items, prefixes in self._pages(prefix, recursive=False):
            yield from ((item["name"], False) for item in items)
            yield from ((name, True) for name in prefixes)

    def _pages(
        self, prefix: str, *, recursive: bool
    ) -> Iterator[tuple[Sequence[dict[str, Any]], Sequence[str]]]:
        """Yield each page's object resources and sorted subdirectories, placeholders left out."""
        conn = self._connection
        base = f"{prefix}/" if prefix else ""
        what = f"listing {prefix or '/'!r} in bucket {conn.bucket_name!r}"
        fetch = functools.partial(
            _list_page, conn, base, None if recursive else "/", fields=_LISTED_FIELDS
        )
        token = None
        while True:
            # Each page is asked for by its token, so a retry asks for that page again.
            items, prefixes, token = conn.call(
                what, functools.partial(fetch, token=token), reading=False
            )
            # A "folder" placeholder some tools create (an object named base) is not a file.
            files = [item for item in items if item["name"] != base]
            yield files, [name.rstrip("/") for name in sorted(prefixes)]
            if token is None:
                return

    # -- with defaults ------------------------------------------------------------

    def is_dir(self, key: str) -> bool:
        """Tell whether any object lies below ``key/``."""
        conn = self._connection
        items, _, _ = conn.call(
            f"listing {key or '/'!r} in bucket {conn.bucket_name!r}",
            lambda: _list_page(
                conn, f"{key}/" if key else "", None, None, fields="items(name)", max_results=1
            ),
            reading=False,
        )
        return bool(items)

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` is an object or a directory, with one listing.

        With ``exists_by_listing`` off, the object's metadata answers, then a
        listing of ``key/`` for a missing object.
        """
        if not key or not self.options.exists_by_listing or self._listing_refused:
            return super().exists(key)
        conn = self._connection
        fetch = functools.partial(
            _list_page, conn, key, "/", fields="items(name),prefixes,nextPageToken"
        )
        what = f"checking whether {key!r} exists in bucket {conn.bucket_name!r}"

        def page(token: str | None) -> Page:
            items, prefixes, following = conn.call(
                what, functools.partial(fetch, token=token), reading=False
            )
            return [item["name"] for item in items], prefixes, following

        try:
            return exists_by_listing(key, page)
        except AccessDenied:
            self._listing_refused = True
            listing_refused(f"GCS bucket {conn.bucket_name!r}")
        return super().exists(key)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy on the service with the rewrite API, in as many calls as it asks."""
        return self._rewrite(src, dst, if_absent=False)

    def copy_new(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` only if ``dst`` is free (``ifGenerationMatch=0``)."""
        self._rewrite(src, dst, if_absent=True)

    def _rewrite(self, src: str, dst: str, *, if_absent: bool) -> ObjectInfo:
        conn = self._connection
        source, query = conn.path_of(src)
        target, _ = conn.path_of(dst)
        if if_absent:
            query["ifGenerationMatch"] = "0"
        what = conn.what("copying", src)

        def rewrite(token: str | None) -> tuple[str | None, dict[str, Any]]:
            """Make one rewrite call; return the next call's token (None: done), the copy."""
            asked = {**query, "rewriteToken": token} if token else query
            answer = conn.json.send_json("POST", f"{source}/rewriteTo{target}", asked, {})
            if answer.get("done"):
                return None, answer["resource"]
            return answer["rewriteToken"], {}

        token: str | None = None
        while True:
            call = functools.partial(rewrite, token)
            if if_absent:
                token, copied = conn.create(what, call, landed=lambda: self._copied(src, dst))
            else:
                token, copied = conn.call(what, call)
            if token is None:
                return resource_info(copied, size=self._reader.plain_size(copied))

    def _copied(self, src: str, dst: str) -> tuple[str | None, dict[str, Any]] | None:
        """Return a finished rewrite's outcome if ``dst`` holds what ``src`` does, else None."""
        try:
            source, copied = self._reader.metadata(src), self._reader.metadata(dst)
        except NotFound:
            return None
        fields = ("crc32c", "md5Hash", "size")
        same = all(copied.get(field) == source.get(field) for field in fields)
        return (None, copied) if same and copied.get("crc32c") is not None else None

    # -- for direct uploads -------------------------------------------------------

    def start_resumable_upload(
        self, key: str, *, content_type: str, size: int, origin: str | None
    ) -> str:
        """Start a resumable upload session for ``key``; return its session URI.

        The service is told the Content-Type and the size
        (``X-Upload-Content-Type``, ``X-Upload-Content-Length``) and, with
        ``origin``, the page origin that may PUT to the session from a browser.
        A retry starts another session; one left unused expires on the service.
        """
        conn = self._connection
        path, query = conn.path_of()
        headers = {"X-Upload-Content-Type": content_type, "X-Upload-Content-Length": str(size)}
        if origin:
            headers["Origin"] = origin
        document = {"name": key, "contentType": content_type}
        return conn.call(
            conn.what("starting an upload to", key),
            lambda: conn.json.start_upload(path, query, document, headers),
            reading=False,
        )

    def cors(self) -> Sequence[dict[str, Any]]:
        """Return the bucket's CORS rules (its ``cors`` metadata)."""
        conn = self._connection
        path, query = conn.path_of()
        bucket = conn.call(
            f"reading the CORS rules of bucket {conn.bucket_name!r}",
            lambda: conn.json.get(path, {**query, "fields": "cors"}),
            reading=False,
        )
        return [dict(rule) for rule in bucket.get("cors") or []]

    def set_cors(self, rules: Sequence[Mapping[str, Any]]) -> None:
        """Replace the bucket's CORS rules with ``rules`` (a PATCH of its metadata)."""
        conn = self._connection
        path, query = conn.path_of()
        document = {"cors": [dict(rule) for rule in rules]}
        conn.call(
            f"setting the CORS rules of bucket {conn.bucket_name!r}",
            lambda: conn.json.send_json("PATCH", path, query, document),
            reading=False,
        )

    # -- by capability ----------------------------------------------------------

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        """Return a V4 signed URL, on ``domain`` (a bucket-bound host) when given."""
        seconds = signed_seconds(expires, "A GCS signed URL")
        return self._signer.sign(
            key, method=method.upper(), seconds=seconds, parameters=parameters, domain=domain
        )

    def public_url(self, key: str) -> str:
        """Return the object's unsigned URL (readable if the object is public)."""
        conn = self._connection
        return f"{conn.base_url}/{conn.bucket_name}/{quote(key, safe=URL_SAFE)}"
