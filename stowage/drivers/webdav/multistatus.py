"""Ask for the properties of WebDAV resources (PROPFIND) and read the multistatus answer.

A PROPFIND answer is a ``207 Multi-Status`` XML document holding one
``response`` per resource: its ``href`` and, grouped by the status of each,
the properties asked for. Only properties found (status 200) are kept.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from stowage.drivers.base import ObjectInfo
from stowage.exceptions import ServiceError
from stowage.records import record

__all__ = ["PROPFIND_BODY", "Resource", "parse_etag", "parse_http_date", "parse_multistatus"]

_DAV = "{DAV:}"

#: The properties every PROPFIND asks for.
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"<D:getcontenttype/></D:prop></D:propfind>"
)


@record(slots=True)
class Resource:
    """One file or collection, as a multistatus answer describes it."""

    #: The URL path of the resource, unquoted.
    path: str
    collection: bool
    size: int
    modified: dt.datetime | None
    etag: str | None
    content_type: str | None

    def info(self, key: str) -> ObjectInfo:
        """Describe this resource as the object stored under ``key``."""
        return ObjectInfo(
            key=key,
            size=self.size,
            modified=self.modified,
            etag=self.etag,
            content_type=self.content_type,
        )


def parse_http_date(text: str | None) -> dt.datetime | None:
    """Return the time an HTTP date (a header or a DAV property) gives, None if unreadable."""
    if not text:
        return None
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_etag(text: str | None) -> str | None:
    """Return an entity tag (a header or a DAV property) without its quotes and weak mark."""
    if not text:
        return None
    return text.removeprefix("W/").strip('"') or None


def _text(props: Mapping[str, ET.Element], name: str) -> str | None:
    element = props.get(f"{_DAV}{name}")
    return None if element is None else (element.text or "").strip()


def parse_multistatus(body: bytes, what: str) -> list[Resource]:
    """Return the resources a PROPFIND answer describes; unreadable XML is a ServiceError."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ServiceError(f"{what}: the server sent an unreadable listing ({exc}).") from exc
    resources = []
    for response in root.iter(f"{_DAV}response"):
        href = response.findtext(f"{_DAV}href") or ""
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(f"{_DAV}propstat"):
            if " 200 " not in f"{propstat.findtext(f'{_DAV}status') or ''} ":
                continue
            for prop in propstat.iter(f"{_DAV}prop"):
                props.update((child.tag, child) for child in prop)
        kind = props.get(f"{_DAV}resourcetype")
        length = _text(props, "getcontentlength")
        resources.append(
            Resource(
                path=unquote(urlsplit(href.strip()).path),
                collection=kind is not None and kind.find(f"{_DAV}collection") is not None,
                size=int(length) if length and length.isdigit() else 0,
                modified=parse_http_date(_text(props, "getlastmodified")),
                etag=parse_etag(_text(props, "getetag")),
                content_type=_text(props, "getcontenttype") or None,
            )
        )
    return resources
