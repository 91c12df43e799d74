"""Find out, once per process, whether each S3 endpoint and bucket honours ``If-None-Match: *``.

The S3 driver (through :class:`ConditionalWrites`) probes a server once (see
:mod:`stowage.drivers.s3`) and keeps the answer here, for every driver on
that endpoint and bucket. Until then its ``capabilities`` is an
:class:`UnsettledCapabilities`, which settles ``ATOMIC_CREATE`` only when
asked about it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

import obstore

from stowage.drivers._obstore import UPLOADS_PREFIX, map_error
from stowage.drivers.base import Capability, in_thread
from stowage.drivers.s3.address import Address
from stowage.drivers.s3.options import S3Options
from stowage.exceptions import AlreadyExists, ConfigurationError, StowageError, translate

__all__ = [
    "CONDITIONAL_WRITES",
    "PROBE_LOCK",
    "WARNED",
    "ConditionalWrites",
    "UnsettledCapabilities",
]

logger = logging.getLogger("stowage.s3")

#: Whether each (endpoint, bucket) honours ``If-None-Match: *``, as probed by this process.
CONDITIONAL_WRITES: dict[tuple[str, str], bool] = {}
#: The (endpoint, bucket) pairs whose best-effort fallback was already logged.
WARNED: set[tuple[str, str]] = set()
#: Held while probing, so concurrent first saves probe once.
PROBE_LOCK = threading.Lock()


class UnsettledCapabilities(frozenset[Capability]):
    """Capabilities whose ``ATOMIC_CREATE`` is settled (by a probe) only when asked for.

    The set holds what is known without I/O; ``Capability.ATOMIC_CREATE in
    caps`` calls ``settle`` and answers with its result.
    """

    _settle: Callable[[], bool]

    def __new__(
        cls, known: frozenset[Capability], settle: Callable[[], bool]
    ) -> UnsettledCapabilities:
        """Hold ``known`` and the function that settles ``ATOMIC_CREATE``."""
        caps = super().__new__(cls, known)
        caps._settle = settle
        return caps

    def __contains__(self, item: object) -> bool:
        """Answer from the set, except for ``ATOMIC_CREATE``, which ``settle`` decides."""
        if item is Capability.ATOMIC_CREATE:
            return self._settle()
        return super().__contains__(item)


class ConditionalWrites:
    """The S3 driver's part that probes for, and decides on, conditional writes."""

    options: S3Options
    address: Address
    store: Any

    @property
    def _conditional_key(self) -> tuple[str, str]:
        endpoint = (self.options.endpoint_url or self.address.origin).rstrip("/")
        return endpoint, self.options.bucket_name

    def conditional_writes_honoured(self) -> bool | None:
        """Tell, without I/O, whether the server honours ``If-None-Match: *``.

        None while unknown (not probed yet in this process). Amazon S3 itself
        (no ``endpoint_url``) honours it. ``conditional_writes="off"`` does
        not change the answer: it says what the server does, not what the
        driver sends.
        """
        if not self.options.endpoint_url:
            return True
        return CONDITIONAL_WRITES.get(self._conditional_key)

    def probe_conditional_writes(self) -> bool:
        """Find out whether the server honours ``If-None-Match: *`` (cached per process).

        Creates a probe object under ``.stowage-uploads/`` twice, expecting
        the second create to be refused, then deletes it. Runs once per
        endpoint and bucket; later calls read the cache.
        """
        known = self.conditional_writes_honoured()
        if known is not None:
            return known
        with PROBE_LOCK:
            known = self.conditional_writes_honoured()
            if known is None:
                known = self._probe()
                CONDITIONAL_WRITES[self._conditional_key] = known
        return known

    def _probe(self) -> bool:
        endpoint, bucket = self._conditional_key
        key = f"{UPLOADS_PREFIX}/conditional-write-probe-{secrets.token_hex(8)}"
        what = f"probing conditional writes on {endpoint} (bucket {bucket!r})"
        try:
            with translate(what, map_error):
                obstore.put(self.store, key, b"", mode="create", use_multipart=False)
            try:
                with translate(what, map_error):
                    obstore.put(self.store, key, b"", mode="create", use_multipart=False)
            except AlreadyExists:
                honoured = True
            except BaseException:
                # The failure matters more than a leftover under the hidden prefix.
                with contextlib.suppress(Exception):
                    obstore.delete(self.store, key)
                raise
            else:
                honoured = False
            with translate(what, map_error):
                obstore.delete(self.store, key)
        except StowageError as exc:
            raise type(exc)(
                f"{exc} (stowage checks once whether the server honours If-None-Match: *, "
                f"which needs writes under {UPLOADS_PREFIX}/; allow them, or set option "
                "conditional_writes='off' to skip the check and save by best effort)"
            ) from exc
        return honoured

    def _creates_atomically(self) -> bool:
        """Tell whether a create can rely on ``If-None-Match: *`` here (probing once)."""
        mode = self.options.conditional_writes
        if mode == "off":
            return False
        if self.probe_conditional_writes():
            return True
        endpoint, bucket = self._conditional_key
        if mode == "require":
            raise ConfigurationError(
                f"Option 'conditional_writes'='require': the S3 server at {endpoint} ignores "
                f"If-None-Match: * on bucket {bucket!r}, so a save could overwrite another "
                "file. Upgrade the server to one that honours conditional writes, or set "
                "conditional_writes='auto' to accept a best-effort create (checked just "
                "before it commits)."
            )
        with PROBE_LOCK:
            first = self._conditional_key not in WARNED
            WARNED.add(self._conditional_key)
        if first:
            logger.warning(
                "The S3 server at %s ignores If-None-Match: * on bucket %r: saves use a "
                "best-effort create (checked just before it commits), which two "
                "simultaneous saves of one name can still race. Set conditional_writes="
                "'off' to accept this without the probe, or 'require' to refuse it.",
                endpoint,
                bucket,
            )
        return False

    async def _acreates_atomically(self) -> bool:
        """Do :meth:`_creates_atomically`; the probe, when still due, runs on a worker thread."""
        if self.options.conditional_writes != "off" and self.conditional_writes_honoured() is None:
            return await in_thread(self._creates_atomically)
        return self._creates_atomically()
