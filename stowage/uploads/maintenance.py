"""Do the work of ``manage.py stowage cors`` and ``manage.py stowage uploads``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import storages

from stowage.exceptions import ConfigurationError
from stowage.uploads.config import upload_settings
from stowage.uploads.sessions import CloudSession, Leftover, UploadSession, session_for

__all__ = ["apply_cors", "cors_document", "find_leftovers", "remove_leftover"]


def _session(alias: str) -> UploadSession:
    return session_for(storages[alias], alias, upload_settings())


def _cloud_session(alias: str) -> CloudSession:
    session = _session(alias)
    if not isinstance(session, CloudSession):
        raise ConfigurationError(
            f"Storage {alias!r} takes uploads through Django (tus): it needs no CORS rules."
        )
    return session


def cors_document(alias: str, origins: list[str]) -> dict[str, Any]:
    """Return the CORS rule uploads from ``origins`` to ``alias`` need, as its service writes it."""
    session = _cloud_session(alias)
    return session.cors_document([session.cors_rule(origins)])


def apply_cors(alias: str, origins: list[str]) -> bool:
    """Add that rule to the service's CORS rules; return False if they allowed it already."""
    return _cloud_session(alias).set_cors(origins)


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
