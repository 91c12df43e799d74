"""Decide which URL a name gets: signed, custom-domain, base-URL or public.

The order, first match wins:

1. ``method`` other than GET, ``parameters`` or ``expire`` ask for a signed
   URL: the driver must sign (``Capability.SIGN``) or the call raises
   :class:`~stowage.exceptions.UnsupportedOperation` rather than hand out a
   permanent URL where a temporary one was asked for. With a
   ``custom_domain`` the URL is signed on that domain where the driver can
   (``SIGN_CUSTOM_DOMAIN``), else on the service's own endpoint.
2. ``custom_domain``: signed on the domain when ``querystring_auth`` is on and
   the driver can sign there; otherwise ``{url_protocol}//{custom_domain}/{key}``,
   unsigned, as django-storages does.
3. ``querystring_auth`` and a driver that signs: a signed URL.
4. ``base_url``, or ``MEDIA_URL`` for drivers with no URL of their own:
   ``base_url`` joined with the name, quoted as Django quotes it.
5. The driver's public URL.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.utils.encoding import filepath_to_uri

from stowage.drivers.base import Capability
from stowage.exceptions import UnsupportedOperation

if TYPE_CHECKING:
    from stowage.storage import Storage

__all__ = ["UrlPolicy", "storage_url"]


def _base_url(storage: Storage) -> str | None:
    if storage.options.base_url is not None:
        return storage.options.base_url
    caps = storage.driver.capabilities
    if Capability.SIGN in caps or Capability.PUBLIC_URL in caps:
        return None
    return str(settings.MEDIA_URL)


class UrlPolicy:
    """Hold what one storage's options and driver decide about its URLs, worked out once."""

    __slots__ = ("can_sign", "domain", "lifetime", "sign_domain", "signs_by_default")

    def __init__(self, storage: Storage) -> None:
        options = storage.options
        caps = storage.driver.capabilities
        self.can_sign = Capability.SIGN in caps
        self.domain = _domain(options.custom_domain, options.url_protocol)
        signs_domain = self.domain is not None and Capability.SIGN_CUSTOM_DOMAIN in caps
        #: The domain a signed URL is made for (None: the service's own endpoint).
        self.sign_domain = self.domain if signs_domain else None
        self.signs_by_default = (
            self.can_sign and options.querystring_auth and (self.domain is None or signs_domain)
        )
        self.lifetime = _lifetime(options.expire_seconds)


def storage_url(
    storage: Storage,
    policy: UrlPolicy,
    name: str | None,
    *,
    expire: int | dt.timedelta | None = None,
    method: str = "GET",
    parameters: Mapping[str, str] | None = None,
) -> str:
    """Return the URL for ``name`` on ``storage`` following the policy above."""
    if method != "GET":
        method = method.upper()
    wants_signature = expire is not None or method != "GET" or bool(parameters)
    if wants_signature and not policy.can_sign:
        raise UnsupportedOperation(
            f"{type(storage).__name__} cannot sign URLs, so url() takes no "
            "'expire', 'parameters' or method other than GET."
        )
    relative = None if name is None else str(name).replace("\\", "/").lstrip("/")
    if relative is not None and (wants_signature or policy.signs_by_default):
        if expire is None:
            lifetime = policy.lifetime
        elif isinstance(expire, dt.timedelta):
            lifetime = expire
        else:
            lifetime = _lifetime(expire)
        return storage.driver.sign(
            storage.key(relative),
            method=method,
            expires=lifetime,
            parameters=parameters,
            domain=policy.sign_domain,
        )
    domain = policy.domain
    base = _base_url(storage) if domain is None else None
    if base is not None:
        if relative is not None and ".." in relative.split("/"):
            # urljoin would resolve "../" out of the base; other characters are quoted.
            raise SuspiciousFileOperation(f"Detected path traversal attempt in '{name}'")
        return urljoin(base, None if relative is None else filepath_to_uri(relative))
    key = storage.key(relative or "", allow_empty=True)
    if relative is None and key:
        key += "/"  # url(None) is the base: the location, as a directory
    if domain is not None:
        return f"{domain}/{filepath_to_uri(storage.driver.domain_path(key))}"
    return storage.driver.public_url(key)


@functools.lru_cache(maxsize=16)
def _lifetime(seconds: int) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


@functools.lru_cache(maxsize=16)
def _domain(custom_domain: str | None, protocol: str) -> str | None:
    if not custom_domain:
        return None
    custom_domain = custom_domain.rstrip("/")
    if custom_domain.startswith(("http://", "https://")):
        return custom_domain
    return f"{protocol}//{custom_domain}"
