"""S3's delimited listing on stowage's own client: pages read one at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

from stowage.drivers.base import ObjectInfo, Prefix
from stowage.drivers.s3.listing import list_level
from stowage.drivers.s3.rest import Answer, RestClient

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _answer(
    keys: list[str], prefixes: list[str], following: str | None, *, encoded: bool = True
) -> bytes:
    code = (lambda text: quote(text, safe="/")) if encoded else (lambda text: text)
    contents = "".join(
        f"<Contents><Key>{code(key)}</Key><Size>{len(key)}</Size>"
        "<LastModified>2026-01-02T03:04:05.000Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag></Contents>"
        for key in keys
    )
    common = "".join(
        f"<CommonPrefixes><Prefix>{code(p)}</Prefix></CommonPrefixes>" for p in prefixes
    )
    more = f"<NextContinuationToken>{following}</NextContinuationToken>" if following else ""
    return (
        f'<ListBucketResult xmlns="{_NS}">'
        f"{'<EncodingType>url</EncodingType>' if encoded else ''}"
        f"<IsTruncated>{'true' if following else 'false'}</IsTruncated>{more}"
        f"{contents}{common}</ListBucketResult>"
    ).encode()


class _Rest:
    """Answers listing calls from prepared pages, recording each query."""

    def __init__(self, *pages: bytes) -> None:
        self.pages = pages
        self.queries: list[dict[str, str]] = []

    def call(self, method: str, key: str, query: Mapping[str, str], **_: Any) -> Answer:
        assert (method, key) == ("GET", "")
        self.queries.append(dict(query))
        index = int(query.get("continuation-token", "0"))
        return Answer(200, cast(Any, {}), self.pages[index])


def _level(rest: _Rest, directory: str) -> list[ObjectInfo | Prefix]:
    return list(list_level(cast(RestClient, rest), directory, hidden=".uploads"))


def test_one_level_with_its_objects_described() -> None:
    rest = _Rest(_answer(["docs/a b+c.txt", "docs/é.txt"], ["docs/sub/"], None))
    entries = _level(rest, "docs")
    assert entries == [
        Prefix("docs/sub"),
        ObjectInfo(
            "docs/a b+c.txt",
            14,
            modified=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            etag="abc",
        ),
        ObjectInfo(
            "docs/é.txt", 10, modified=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), etag="abc"
        ),
    ]
    assert rest.queries == [
        {"list-type": "2", "prefix": "docs/", "delimiter": "/", "encoding-type": "url"}
    ]


def test_names_come_as_they_are_when_the_server_ignores_url_encoding() -> None:
    rest = _Rest(_answer(["a%20b", "x+y"], [], None, encoded=False))
    assert [entry.key for entry in _level(rest, "")] == ["a%20b", "x+y"]
    assert rest.queries[0]["prefix"] == ""


def test_the_staging_prefix_and_a_directory_marker_are_left_out() -> None:
    rest = _Rest(_answer(["docs/", "docs/a"], ["docs/.uploads/", "docs/b/"], None))
    # The staging prefix lies at the bucket's root: a directory of that name elsewhere is listed.
    assert [entry.key for entry in _level(rest, "docs")] == ["docs/.uploads", "docs/b", "docs/a"]
    root = _Rest(_answer(["a"], [".uploads/", "b/"], None))
    assert [entry.key for entry in _level(root, "")] == ["b", "a"]


def test_pages_are_asked_for_one_at_a_time() -> None:
    rest = _Rest(
        _answer(["d/a", "d/b"], [], "1"),
        _answer(["d/c"], ["d/e/"], "2"),
        _answer(["d/f"], [], None),
    )
    entries = list_level(cast(RestClient, rest), "d", hidden=".uploads")
    assert next(entries).key == "d/a"
    assert len(rest.queries) == 1  # the second page waits until the first is read
    assert [entry.key for entry in entries] == ["d/b", "d/e", "d/c", "d/f"]
    assert [query.get("continuation-token") for query in rest.queries] == [None, "1", "2"]
