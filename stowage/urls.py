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

With ``url_cache_size``, signed URLs are kept in a :class:`SignedUrlCache`
per storage, by name, method, lifetime and parameters, and handed out again
while at least half of their lifetime is left.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.utils.encoding import filepath_to_uri

from stowage.drivers.base import Capability
from stowage.exceptions import UnsupportedOperation

if TYPE_CHECKING:
    from stowage.binding import Binding

__all__ = ["SignedUrlCache", "UrlPolicy", "storage_url"]


def _base_url(storage: Binding) -> str | None:
    if storage.options.base_url is not None:
        return storage.options.base_url
    caps = storage.driver.capabilities
    if Capability.SIGN in caps or Capability.PUBLIC_URL in caps:
        return None
    return str(settings.MEDIA_URL)


@functools.lru_cache(maxsize=64)
def _appends_plainly(base: str) -> bool:
    """Tell whether urljoin() puts a plain relative path after ``base`` unchanged.

    True for the usual ``/static/`` or ``https://cdn.example.com/media/``: a
    base ending in ``/``, with no query, fragment, dot or empty segment. A
    plain path is one of quoted segments, none of them empty, ``.`` or ``..``.
    """
    return urljoin(base, "a/b") == base + "a/b"


class SignedUrlCache:
    """Keep signed URLs for reuse, bounded to ``size``, least recently used dropped first.

    Each URL is stored with the time until which it is handed out again, half
    of its lifetime after signing, so a cached URL always has at least half
    of its requested lifetime left. ``clock`` returns seconds (monotonic: a
    change of the wall clock neither keeps a URL too long nor drops it).
    Safe to share between threads; signing happens outside the lock.
    """

    __slots__ = ("_entries", "_lock", "clock", "size")

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float) -> str | None:
        """Return the URL kept for ``key`` if it is still fresh at ``now``, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now > entry[1]:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, url: str, fresh_until: float) -> None:
        """Keep ``url`` for ``key`` until ``fresh_until``, dropping the least recently used."""
        with self._lock:
            self._entries[key] = (url, fresh_until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class UrlPolicy:
    """Hold what one storage's options and driver decide about its URLs, worked out once."""

    __slots__ = (
        "cache",
        "can_sign",
        "domain",
        "driver",
        "lifetime",
        "sign_domain",
        "signer",
        "signs_by_default",
    )

    def __init__(self, storage: Binding, *, clock: Callable[[], float] = time.monotonic) -> None:
        options = storage.options
        #: The storage's driver when the policy was made (the storage drops both on close()).
        self.driver = storage.driver
        caps = self.driver.capabilities
        self.can_sign = Capability.SIGN in caps
        self.domain = _domain(options.custom_domain, options.url_protocol)
        signs_domain = self.domain is not None and Capability.SIGN_CUSTOM_DOMAIN in caps
        #: The domain a signed URL is made for (None: the service's own endpoint).
        self.sign_domain = self.domain if signs_domain else None
        self.signs_by_default = (
            self.can_sign and options.querystring_auth and (self.domain is None or signs_domain)
        )
        self.lifetime = _lifetime(options.expire_seconds)
        size = options.url_cache_size
        #: Signed URLs kept for reuse (None: url_cache_size is 0).
        self.cache = SignedUrlCache(size, clock) if size and self.can_sign else None
        #: Signs a key as configured, where URLs are signed by default and not
        #: cached: the storage sends a clean name's plain url() straight to it.
        self.signer = (
            self.driver.signer(expires=self.lifetime, domain=self.sign_domain)
            if self.signs_by_default and self.cache is None
            else None
        )


def storage_url(
    storage: Binding,
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
        cache = policy.cache
        if cache is None:
            return _sign(storage, policy, relative, method, lifetime, parameters)
        try:
            entry = (
                relative,
                method,
                lifetime,
                tuple(sorted(parameters.items())) if parameters else (),
            )
            now = cache.clock()
            url = cache.get(entry, now)
        except TypeError:
            # Unhashable or unorderable parameters: the driver judges them, uncached.
            return _sign(storage, policy, relative, method, lifetime, parameters)
        if url is None:
            url = _sign(storage, policy, relative, method, lifetime, parameters)
            cache.put(entry, url, now + lifetime.total_seconds() / 2)
        return url
    domain = policy.domain
    base = _base_url(storage) if domain is None else None
    if base is not None:
        if relative is None:
            return urljoin(base, None)
        segments = relative.split("/")
        if ".." in segments:
            # urljoin would resolve "../" out of the base; other characters are quoted.
            raise SuspiciousFileOperation(f"Detected path traversal attempt in '{name}'")
        path = filepath_to_uri(relative)
        if "." in segments or "//" in path or not _appends_plainly(base):
            return urljoin(base, path)
        return base + path  # what urljoin gives for such a path, without parsing both
    key = storage.key(relative or "", allow_empty=True)
    if relative is None and key:
        key += "/"  # url(None) is the base: the location, as a directory
    if domain is not None:
        return f"{domain}/{filepath_to_uri(policy.driver.domain_path(key))}"
    return policy.driver.public_url(key)


def _sign(
    storage: Binding,
    policy: UrlPolicy,
    relative: str,
    method: str,
    lifetime: dt.timedelta,
    parameters: Mapping[str, str] | None,
) -> str:
    return policy.driver.sign(
        storage.key(relative),
        method=method,
        expires=lifetime,
        parameters=parameters,
        domain=policy.sign_domain,
    )


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
