"""Settings of the obstore client that every obstore-backed driver builds alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

from stowage.drivers.retry import DEFAULT_POLICY
from stowage.exceptions import (
    ConfigurationError,
)

__all__ = ["read_ca_bundle", "retry_config"]


def read_ca_bundle(verify: bool | str) -> str | None:
    """Return the PEM text of the CA bundle option ``verify`` names, or None for True/False."""
    if not isinstance(verify, str):
        return None
    try:
        with open(verify, encoding="ascii") as bundle:
            text = bundle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"Option 'verify': cannot read the CA bundle {verify!r}: {exc}"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigurationError(f"Option 'verify': {verify!r} holds no PEM certificate.")
    return text


def retry_config(max_retries: int, timeout: float) -> dict[str, Any]:
    """Return obstore's retry settings: the drivers' one backoff, ``max_retries`` times.

    The whole of a request's retries may take as long as its tries could.
    """
    return {
        "max_retries": max_retries,
        "retry_timeout": dt.timedelta(seconds=max(timeout, 1) * (max_retries + 1)),
        "backoff": {
            "init_backoff": dt.timedelta(seconds=DEFAULT_POLICY.base),
            "max_backoff": dt.timedelta(seconds=DEFAULT_POLICY.cap),
            "base": 2,
        },
    }
