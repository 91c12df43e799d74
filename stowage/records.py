"""Frozen records: dataclasses that cost little to define.

``@dataclass(frozen=True)`` compiles six methods for every class it decorates,
about a millisecond each time on a small machine; stowage defines some sixty
such classes, and every process that imports a backend paid for them.
:func:`record` makes the same frozen dataclass (``dataclasses.fields``,
``replace``, ``is_dataclass`` and subclassing with ``@dataclass(frozen=True)``
all work) with shared methods instead: ``__init__`` alone is compiled, the
first time the class is instantiated, so building an instance stays as fast
as a dataclass's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["record"]

T = TypeVar("T")

_MISSING = dataclasses.MISSING
_set = object.__setattr__
_defining = threading.Lock()


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, slots: bool = False, repr: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(
    cls: type[T] | None = None, /, *, slots: bool = False, repr: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a frozen dataclass, as ``@dataclass(frozen=True)`` would.

    ``slots`` and ``repr`` mean what they mean to :func:`dataclasses.dataclass`.
    """

    def wrap(cls: type[T]) -> type[T]:
        return _make(cls, slots=slots, with_repr=repr)

    return wrap if cls is None else wrap(cls)


def _make(cls: type[T], *, slots: bool, with_repr: bool) -> type[T]:
    # dataclasses refuses a non-frozen class on frozen bases; the methods it
    # would compile for frozenness are the shared ones below, so the bases are
    # declared non-frozen while it collects the fields, and the new class is
    # declared frozen afterwards (what a @dataclass(frozen=True) subclass checks).
    with _defining:
        bases = [
            base.__dataclass_params__  # type: ignore[attr-defined]
            for base in cls.__mro__[1:]
            if "__dataclass_params__" in base.__dict__
        ]
        for params in bases:
            params.frozen = False
        try:
            cls = dataclasses.dataclass(
                cls, init=False, repr=False, eq=False, frozen=False, slots=slots
            )
        finally:
            for params in bases:
                params.frozen = True
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        params.init = params.eq = params.frozen = True
        params.repr = with_repr
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    _check_order(cls, fields)
    names = frozenset(field.name for field in fields)
    compared = tuple(field.name for field in fields if field.compare)
    hashed = tuple(
        field.name for field in fields if (field.compare if field.hash is None else field.hash)
    )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _compile_init(cls)
        setattr(cls, "__init__", init)  # noqa: B010
        init(self, *args, **kwargs)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in compared)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, name) for name in hashed))

    methods: dict[str, Callable[..., Any]] = {
        "__init__": __init__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__eq__": __eq__,
        "__hash__": __hash__,
    }
    for name, method in methods.items():
        method.__qualname__ = f"{cls.__qualname__}.{name}"  # this class's own closures
    if with_repr:
        methods["__repr__"] = _repr
    if slots:
        methods["__getstate__"] = _getstate
        methods["__setstate__"] = _setstate
    for name, method in methods.items():
        # What the class body defines stays, as with dataclasses; a body that
        # defines __eq__ alone has __hash__ None, which dataclasses replaces.
        own = cls.__dict__.get(name, _MISSING)
        if own is _MISSING or (name == "__hash__" and own is None):
            setattr(cls, name, method)
    return cls


def _check_order(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
    """Refuse a field without a default after one with, as dataclasses does."""
    defaulted = None
    for field in fields:
        if not field.init:
            continue
        if field.default is not _MISSING or field.default_factory is not _MISSING:
            defaulted = field.name
        elif defaulted is not None:
            raise TypeError(
                f"{cls.__qualname__}: non-default argument {field.name!r} follows "
                f"default argument {defaulted!r}"
            )


def _compile_init(cls: type) -> Callable[..., None]:
    """Return the ``__init__`` a frozen dataclass would have, compiled once per class."""
    scope: dict[str, Any] = {"_set": _set, "_MISSING": _MISSING}
    params = []
    lines = []
    for field in dataclasses.fields(cls):
        name = field.name
        has_factory = field.default_factory is not _MISSING
        if has_factory:
            scope[f"_factory_{name}"] = field.default_factory
        if field.default is not _MISSING:
            scope[f"_default_{name}"] = field.default
        if not field.init:
            if has_factory:
                lines.append(f"_set(self, {name!r}, _factory_{name}())")
            elif field.default is not _MISSING:
                lines.append(f"_set(self, {name!r}, _default_{name})")
            continue
        if has_factory:
            params.append(f"{name}=_MISSING")
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
        elif field.default is not _MISSING:
            params.append(f"{name}=_default_{name}")
            value = name
        else:
            params.append(name)
            value = name
        lines.append(f"_set(self, {name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        lines.append("self.__post_init__()")
    body = "\n    ".join(lines or ["pass"])
    exec(f"def __init__(self, {', '.join(params)}):\n    {body}\n", scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(self: Any) -> str:
    shown = ", ".join(
        f"{field.name}={getattr(self, field.name)!r}"
        for field in dataclasses.fields(self)
        if field.repr
    )
    return f"{self.__class__.__qualname__}({shown})"


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, field.name) for field in dataclasses.fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for field, value in zip(dataclasses.fields(self), state, strict=True):
        _set(self, field.name, value)
