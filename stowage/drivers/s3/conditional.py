"""Remember, per process, whether each S3 endpoint and bucket honours ``If-None-Match: *``.

The S3 driver probes a server once (see :mod:`stowage.drivers.s3`) and keeps
the answer here, for every driver on that endpoint and bucket. Until then its
``capabilities`` is an :class:`UnsettledCapabilities`, which settles
``ATOMIC_CREATE`` only when asked about it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from stowage.drivers.base import Capability

__all__ = ["CONDITIONAL_WRITES", "PROBE_LOCK", "WARNED", "UnsettledCapabilities"]

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
