"""Refuse a name that the server would read as another name in a MOVE's ``Destination``.

Why: a MOVE names its target in the ``Destination`` header, a URL in which
stowage percent-encodes every delimiter. Some servers decode that header
before they split it into path, parameters and query: wsgidav does, so
``a?b`` arrives as the path ``a`` with the query ``b``, and ``a;b`` as
``a`` with the parameter ``b``. Saving ``a?b`` there would write ``a``
(and replace it, when replacing), or fail on the collection (``?``
alone). The request line itself is read correctly, so every other
operation is fine.

So the first write of a name holding ``?``, ``#`` or ``;`` (``;`` only
matters in the last part of the name, where URL parameters live) asks the
server once, per character, where a MOVE to a hidden name holding it lands
(in the driver's root collection). Where it lands elsewhere, such names
are refused with ``SuspiciousFileOperation`` before a byte is sent, and
the message says what to do instead.
"""

from __future__ import annotations

import secrets

from stowage.drivers.base import TEMP_PREFIX
from stowage.drivers.webdav.errors import expect
from stowage.drivers.webdav.flows import Flows
from stowage.drivers.webdav.steps import Call, Flow
from stowage.names import misread

__all__ = ["DestinationCheck"]

#: Delimiters that end a URL's path wherever they are.
_ANYWHERE = "?#"
#: The delimiter of a last path segment's parameters.
_LAST_PART = ";"


def delimiters(key: str) -> list[str]:
    """Return the URL delimiters in ``key`` that a decoding server could misread."""
    last = key.rpartition("/")[2]
    found = [c for c in _ANYWHERE if c in key]
    return found + [c for c in _LAST_PART if c in last]


class DestinationCheck:
    """Learn, once per character, whether the server reads it literally in ``Destination``."""

    def __init__(self, flows: Flows) -> None:
        self._flows = flows
        #: What each probed character showed: True when the server read it literally.
        self.literal: dict[str, bool] = {}

    def check(self, key: str) -> Flow[None]:
        """Raise ``SuspiciousFileOperation`` if a MOVE to ``key`` would land elsewhere."""
        for delimiter in delimiters(key):
            if delimiter not in self.literal:
                self.literal[delimiter] = yield from self._probe(delimiter)
            if not self.literal[delimiter]:
                raise misread(
                    f"Cannot write {key!r}: this WebDAV server reads {delimiter!r} in a "
                    "MOVE's Destination header as a URL delimiter, so the file would be "
                    f"written under another name. Use a name without {delimiter!r} (a "
                    "storage subclass can replace it in get_valid_name())."
                )

    def _probe(self, delimiter: str) -> Flow[bool]:
        """MOVE an empty hidden file to a hidden name holding ``delimiter``; did it land there?

        The probe runs in the driver's root collection, before the write
        makes any collection for a name it may refuse.
        """
        source = f"{TEMP_PREFIX}{secrets.token_hex(16)}"
        shortened = f"{TEMP_PREFIX}{secrets.token_hex(16)}"
        target = f"{shortened}{delimiter}probe"
        what = "checking how the server reads a MOVE's Destination"
        try:
            literal = yield from self._move_and_look(source, target, what)
        except Exception:
            yield from self._flows.discard(source, target, shortened)
            raise
        yield from self._flows.discard(source, target, shortened)
        return literal

    def _move_and_look(self, source: str, target: str, what: str) -> Flow[bool]:
        url = self._flows.url
        response = yield Call("PUT", url(source), what, content=b"")
        expect(response, what)
        headers = {"Destination": url(target), "Overwrite": "F"}
        # A refused MOVE says nothing of how the server reads the name: raise its error.
        expect((yield Call("MOVE", url(source), what, headers)), what, 201, 204)
        return (yield from self._flows.stat(target)) is not None
