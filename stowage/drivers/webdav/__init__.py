"""Store files on a WebDAV server, over httpx.

Each operation is written once, as a *flow*: a generator that yields the
requests it needs and receives the responses. A sync runner and an async
runner drive the same flows, so a method and its async twin behave alike.

- :mod:`~stowage.drivers.webdav.options`: the driver's options;
- :mod:`~stowage.drivers.webdav.steps`: what a flow yields (requests, pauses);
- :mod:`~stowage.drivers.webdav.flows`: reads, listings, deletes, collections;
- :mod:`~stowage.drivers.webdav.multistatus`: PROPFIND and its XML answers;
- :mod:`~stowage.drivers.webdav.reads`: ranged reads, resumed after a cut;
- :mod:`~stowage.drivers.webdav.staging`: uploads and copies, staged then moved;
- :mod:`~stowage.drivers.webdav.locking`: the lock that makes creates atomic;
- :mod:`~stowage.drivers.webdav.errors`: answers and failures as stowage errors;
- :mod:`~stowage.drivers.webdav.connection`: the httpx clients;
- :mod:`~stowage.drivers.webdav.runners`: the sync and async runners;
- :mod:`~stowage.drivers.webdav.driver`: the driver, one flow per method.
"""

from __future__ import annotations

from stowage.drivers.base import HIDDEN_PREFIX
from stowage.drivers.webdav.driver import WebDAVDriver
from stowage.drivers.webdav.options import WebDAVOptions

__all__ = ["HIDDEN_PREFIX", "WebDAVDriver", "WebDAVOptions"]
