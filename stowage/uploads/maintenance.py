"""Do the work of ``manage.py stowage cors`` and ``manage.py stowage uploads``."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import storages

from stowage.exceptions import ConfigurationError
from stowage.uploads.config import upload_settings
from stowage.uploads.sessions import Leftover, S3Session, TusSession, session_for

__all__ = ["apply_cors", "cors_rules", "cors_xml", "find_leftovers", "remove_leftover"]


def cors_rules(origins: list[str]) -> list[dict[str, Any]]:
    """Return the bucket CORS rules the widget needs: PUT of parts from ``origins``."""
    if not origins:
        raise ConfigurationError(
            "Name the site's origins: --origin https://example.com, or "
            "STOWAGE_DIRECT_UPLOADS['CORS_ORIGINS']."
        )
    bad = [o for o in origins if "://" not in o or o.rstrip("/").count("/") > 2]
    if bad:
        raise ConfigurationError(f"Origins are scheme://host[:port] only, not {bad}.")
    return [
        {
            "AllowedOrigins": [o.rstrip("/") for o in origins],
            "AllowedMethods": ["PUT"],
            "AllowedHeaders": ["Content-Type"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
    ]


def cors_xml(rules: list[dict[str, Any]]) -> bytes:
    """Return ``rules`` as the XML body of S3's PutBucketCors."""
    root = ET.Element("CORSConfiguration")
    singular = {
        "AllowedOrigins": "AllowedOrigin",
        "AllowedMethods": "AllowedMethod",
        "AllowedHeaders": "AllowedHeader",
        "ExposeHeaders": "ExposeHeader",
    }
    for rule in rules:
        element = ET.SubElement(root, "CORSRule")
        for key, values in rule.items():
            if key in singular:
                for value in values:
                    ET.SubElement(element, singular[key]).text = value
            else:
                ET.SubElement(element, key).text = str(values)
    return bytes(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _session(alias: str) -> S3Session | TusSession:
    session = session_for(storages[alias], alias, upload_settings())
    assert isinstance(session, S3Session | TusSession)
    return session


def apply_cors(alias: str, rules: list[dict[str, Any]]) -> None:
    """Set ``rules`` on the bucket of storage ``alias`` (S3 only)."""
    session = _session(alias)
    if not isinstance(session, S3Session):
        raise ConfigurationError(
            f"Storage {alias!r} is not on S3: its uploads go through Django and need no CORS."
        )
    session.client.put_cors(cors_xml(rules))


def find_leftovers(alias: str, older_than: dt.timedelta) -> Iterator[tuple[Leftover, bool]]:
    """Yield each leftover upload of ``alias`` and whether it is older than ``older_than``."""
    session = _session(alias)
    deadline = dt.datetime.now(dt.UTC) - older_than
    for leftover in session.leftovers():
        started = leftover.started
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        yield leftover, started is None or started <= deadline


def remove_leftover(alias: str, leftover: Leftover) -> None:
    """Abort or delete ``leftover``."""
    _session(alias).remove(leftover)
