"""Helpers the storage contract's test classes share."""

from __future__ import annotations

from typing import Any

__all__ = ["DELIMITER_NAMES", "declared", "read_back"]

#: Names holding URL delimiters: each must be kept as named, or refused.
DELIMITER_NAMES = ("q?x.txt", "h#x.txt", "s;x.txt", "p%3Fx.txt", "amp&x=1.txt", "plus+x.txt")


def read_back(storage: Any, name: str, mode: str = "rb") -> Any:
    """Return what ``storage`` holds under ``name``, read whole in ``mode``."""
    with storage.open(name, mode) as handle:
        return handle.read()


def declared(contract: object, storage: Any, flag: str, capability: str) -> bool:
    """Tell whether the backend under test can do what the attribute ``flag`` names.

    The contract's ``flag`` decides where it is set; else a stowage storage
    answers from its driver's ``capability`` (``"public_urls"``: URLs are
    unsigned). Any other storage must declare ``flag``.
    """
    value = getattr(contract, flag)
    if value is not None:
        return bool(value)
    from stowage.drivers.base import Capability
    from stowage.storage import Storage

    if not isinstance(storage, Storage):
        raise AssertionError(f"declare {flag} for {type(storage).__name__}")
    caps = storage.driver.capabilities
    if capability == "public_urls":
        return Capability.SIGN not in caps or not storage.options.querystring_auth
    return Capability[capability] in caps
