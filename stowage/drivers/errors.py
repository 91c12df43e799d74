"""Map a service client's errors to stowage's tree with one table per driver.

A driver lists its client's failures once, as an :class:`ErrorTable` of
:class:`Rule` rows: an exception class (or a tuple of them), an HTTP-like
status code (or a range of them), or a predicate, each with the stowage
class it becomes and a message. The first matching row wins; an error that
no row matches is left to :func:`stowage.exceptions.translate`'s own
fallbacks. Tables are applied through ``translate``, so every translated
error is chained to its cause::

    with TABLE.translate(f"reading {key!r}", root=url):
        ...

Messages are ``str.format`` templates over ``what`` (the operation),
``detail`` (the error's text, as the table's ``detail`` function gives it),
``name`` (the error's class name), ``status``, ``exc`` (the error itself, for
its attributes: ``{exc.code}``) and any field the caller adds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from stowage.exceptions import Mapper, StowageError, translate
from stowage.records import record

__all__ = ["ErrorTable", "Refusal", "Rule"]

#: What a rule matches: error classes, a status code or range, or a predicate.
Match = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | int
    | range
    | Callable[[BaseException], bool]
)


@record(slots=True)
class Rule:
    """Say which stowage class, with which message, one kind of failure becomes."""

    match: Match
    target: type[StowageError]
    message: str = "{what}: {detail}"

    def matches(self, exc: BaseException, status: int | None) -> bool:
        """Tell whether ``exc`` (whose status is ``status``, if any) is this rule's."""
        match = self.match
        if isinstance(match, int):
            return status == match
        if isinstance(match, range):
            return status is not None and status in match
        if isinstance(match, (tuple, type)):
            return isinstance(exc, match)
        return match(exc)


def _no_status(exc: BaseException) -> int | None:
    return None


class ErrorTable:
    """Translate a client's errors by the first of its rules that matches."""

    def __init__(
        self,
        *rules: Rule,
        status: Callable[[BaseException], int | None] = _no_status,
        detail: Callable[[BaseException], str] = str,
    ) -> None:
        self.rules = rules
        self._status = status
        self._detail = detail

    def extend(self, *rules: Rule) -> ErrorTable:
        """Return a table trying ``rules`` first, then this table's rules."""
        return ErrorTable(*rules, *self.rules, status=self._status, detail=self._detail)

    def lookup(self, exc: BaseException, what: str, **fields: Any) -> StowageError | None:
        """Return the stowage error ``exc`` becomes, or None if no rule matches."""
        status = self._status(exc)
        for rule in self.rules:
            if rule.matches(exc, status):
                text = rule.message.format(
                    **fields,
                    what=what,
                    detail=self._detail(exc),
                    name=type(exc).__name__,
                    exc=exc,
                    status=status,
                )
                return rule.target(text)
        return None

    def mapper(self, what: str, **fields: Any) -> Mapper:
        """Return the ``mapper`` for :func:`~stowage.exceptions.translate` of one operation."""
        return lambda exc: self.lookup(exc, what, **fields)

    def translate(self, what: str, **fields: Any) -> contextlib.AbstractContextManager[None]:
        """Translate every error raised in the block, as :func:`~stowage.exceptions.translate`."""
        return translate(what, self.mapper(what, **fields))

    def convert(self, exc: BaseException, what: str, **fields: Any) -> StowageError:
        """Return ``exc`` translated and chained, as raising it inside :meth:`translate` would.

        For flows that hand an error on instead of raising it. An error that
        ``translate`` lets through (a programming error) is raised.
        """
        try:
            with self.translate(what, **fields):
                raise exc
        except StowageError as translated:
            return translated


class Refusal(Exception):
    """A service's own error answer, before translation: its HTTP status, error code and message."""

    def __init__(self, status: int, code: str = "", message: str = "") -> None:
        name = code or f"HTTP {status}"
        super().__init__(f"{name}: {message}" if message else name)
        self.status = status
        self.code = code

    @staticmethod
    def status_of(exc: BaseException) -> int | None:
        """Return the HTTP status of ``exc`` if it is a :class:`Refusal` (a table's ``status``)."""
        return exc.status if isinstance(exc, Refusal) else None

    @classmethod
    def from_xml(cls, status: int, body: bytes, code: str = "") -> Refusal:
        """Read an ``<Error>`` document's ``Code`` and ``Message`` (S3's, Azure's), any namespace.

        ``code`` (from a header) stands in for a missing one; a body that is
        not XML (a HEAD, a proxy's page) becomes the message.
        """
        from xml.etree import ElementTree  # the error path only: it costs an import

        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return cls(status, code, body[:200].decode(errors="replace").strip())
        texts = {child.tag.rpartition("}")[2]: child.text or "" for child in root}
        return cls(status, texts.get("Code") or code, texts.get("Message", "")[:300])
