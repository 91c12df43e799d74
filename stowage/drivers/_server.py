"""Share what the drivers of one login on one server do alike (SFTP, FTP).

Both keep every key as a file below a root directory, write through a hidden
temporary name beside the target, name the server in messages without the
password, keep secrets out of the errors they pass on, and serve files at
``base_url`` when one is set.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import quote

from stowage.drivers.base import TEMP_PREFIX, URL_SAFE
from stowage.exceptions import UnsupportedOperation

__all__ = ["below_root", "public_url", "redact", "server_address", "temp_name"]


def below_root(root: str, key: str) -> str:
    """Return the server path of ``key`` below the directory ``root`` (``root`` for "")."""
    if not key:
        return root
    return f"{root.rstrip('/')}/{key}"


def temp_name() -> str:
    """Return a new hidden name to write to before the rename into place."""
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}"


def server_address(scheme: str, username: str | None, host: str, port: int) -> str:
    """Name the server and the login for messages: no password in it."""
    user = f"{username}@" if username else ""
    return f"{scheme}://{user}{host}:{port}"


def redact(text: str, values: Iterable[str]) -> str:
    """Return ``text`` with each of the secret ``values`` replaced by ``***``."""
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text


def public_url(base_url: str | None, key: str, *, missing: str) -> str:
    """Return ``base_url`` followed by the quoted key, or raise ``missing`` without one."""
    if base_url is None:
        raise UnsupportedOperation(missing)
    return base_url + quote(key, safe=URL_SAFE)
