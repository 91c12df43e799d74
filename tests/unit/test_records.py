"""Records behave as the frozen dataclasses they replace, down to subclassing."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from stowage.config import option
from stowage.drivers.base import DriverOptions, ObjectInfo
from stowage.drivers.options import NetworkOptions
from stowage.records import record


def _point(decorate: Any) -> Any:
    """Return the same class body made by ``decorate``."""

    class Point:
        x: int
        y: int = 0
        tags: list[str] = field(default_factory=list)
        seen: int = field(default=7, init=False)
        hidden: str = field(default="s", repr=False, compare=False)

    return decorate(Point)


Point = _point(record)
PointAsDataclass = _point(dataclass(frozen=True))


@record(slots=True)
class Slotted:
    """A record with slots."""

    name: str
    size: int = 0


@record
class Checked:
    """A record whose __post_init__ checks and derives."""

    value: int
    doubled: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")
        object.__setattr__(self, "doubled", self.value * 2)


def test_init_takes_positional_and_keyword_arguments_with_defaults() -> None:
    assert Point(1) == Point(x=1, y=0)
    point = Point(1, 2, ["a"])
    assert (point.x, point.y, point.tags, point.seen) == (1, 2, ["a"], 7)
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, seen=3)  # type: ignore[call-arg]


def test_default_factories_give_each_instance_its_own_value() -> None:
    first, second = Point(1), Point(1)
    assert first.tags == []
    assert first.tags is not second.tags


def test_repr_eq_and_hash_match_a_frozen_dataclass() -> None:
    ours, theirs = Point(1, 2, ["a"], hidden="h"), PointAsDataclass(1, 2, ["a"], hidden="h")
    assert repr(ours) == repr(theirs)
    assert Point(1, hidden="a") == Point(1, hidden="b")
    assert Point(1) != Point(2)
    assert Point(1) != PointAsDataclass(1)  # another class, as with dataclasses
    assert hash(Slotted("a", 1)) == hash(Slotted("a", 1))
    with pytest.raises(TypeError, match="unhashable"):
        hash(Point(1))  # a list field, as with dataclasses


def test_instances_are_frozen() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Slotted("a").size = 1  # type: ignore[misc]


def test_post_init_runs_after_the_fields_are_set() -> None:
    assert Checked(3).doubled == 6
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


def test_dataclass_functions_work_on_records() -> None:
    point = Point(1, 2)
    assert dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(point)] == ["x", "y", "tags", "seen", "hidden"]
    assert dataclasses.replace(point, y=5) == Point(1, 5)
    assert dataclasses.asdict(Slotted("a", 2)) == {"name": "a", "size": 2}
    assert Point.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_slotted_records_have_no_dict_and_survive_pickle_and_copy() -> None:
    item = Slotted("a", 3)
    assert not hasattr(item, "__dict__")
    assert pickle.loads(pickle.dumps(item)) == item
    assert copy.deepcopy(item) == item
    info = ObjectInfo("k", 1, metadata={"a": "b"})
    assert pickle.loads(pickle.dumps(info)) == info


def test_plain_records_survive_pickle_and_copy() -> None:
    checked = Checked(3)
    assert pickle.loads(pickle.dumps(checked)) == checked
    assert copy.deepcopy(checked) == checked
    assert copy.copy(Point(1, 2, ["a"])) == Point(1, 2, ["a"])


def test_a_field_without_default_after_one_with_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument 'a'"):

        @record
        class Wrong:
            a: int = 0
            b: int  # type: ignore[misc]


def test_what_the_class_body_defines_stays() -> None:
    @record
    class Shown:
        a: int

        def __repr__(self) -> str:
            return "mine"

    assert repr(Shown(1)) == "mine"

    @record(repr=False)
    class Unshown:
        a: int

    assert repr(Unshown(1)).startswith("<")


def test_records_subclass_records_and_redeclare_a_default() -> None:
    @record
    class Child(Checked):
        extra: str = "e"

    child = Child(2, extra="x")
    assert (child.value, child.doubled, child.extra) == (2, 4, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.extra = "y"  # type: ignore[misc]
    # the base is still frozen to dataclasses after its subclass was defined
    assert Checked.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_driver_options_subclass_with_a_frozen_dataclass_as_the_kit_documents() -> None:
    @dataclass(frozen=True)
    class MyOptions(NetworkOptions):
        endpoint: str = option("", doc="Where the service answers.")

    options = MyOptions(endpoint="e", timeout=5.0)
    assert (options.endpoint, options.timeout) == ("e", 5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.endpoint = "f"  # type: ignore[misc]
    with pytest.raises(Exception, match="timeout"):
        MyOptions(timeout=0)  # the base's __post_init__ still checks

    @dataclass(frozen=True)
    class Empty(DriverOptions):
        pass

    assert Empty() == Empty()


def test_a_record_may_not_add_a_mutable_dataclass_beneath_it() -> None:
    with pytest.raises(TypeError, match="non-frozen"):

        @dataclass
        class Mutable(Point):
            z: int = 0
