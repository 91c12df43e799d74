"""Check ``stowage.W009``: ``exists_by_listing=True`` set where exists() cannot be one listing.

It sits beside :mod:`stowage.checks`, which lists every check stowage registers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning

from stowage.checks import configured_storages

__all__ = ["check_exists_listing"]


def check_exists_listing(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report ``exists_by_listing=True`` set where exists() cannot be one listing (W009).

    stowage sends that listing with its own client, which cannot go through
    an ``https://`` or SOCKS proxy, nor (Azure) use the tokens obstore holds
    for a service principal or managed identity. exists() then asks for the
    object first: the same answers, with two requests for a missing name.
    The option is on by default, so only setting it (in ``OPTIONS`` or as a
    class attribute) is reported: the project asked for something it does not get.
    """
    messages: list[CheckMessage] = []
    for configured in configured_storages():
        storage = configured.storage
        if storage is None:
            continue
        asked = configured.options.get(
            "exists_by_listing", getattr(configured.backend, "exists_by_listing", None)
        )
        unavailable = getattr(storage.driver, "exists_listing_unavailable", None)
        why = unavailable() if asked and callable(unavailable) else None
        if why is None:
            continue
        messages.append(
            CheckWarning(
                f"exists_by_listing=True is set, but exists() cannot be one listing here: "
                f"{why}. exists() asks for the object first, then lists below a missing "
                "name: the same answers, in two requests for a missing name.",
                hint="Reach the service directly or through an http:// proxy (on Azure, "
                "authorize with an account key, a SAS or a credential provider), or "
                "remove exists_by_listing from the storage's options.",
                obj=configured.label,
                id="stowage.W009",
            )
        )
    return messages
