"""Check that a storage obeys what a project's subclass of it says.

Projects customise storages by subclassing: Django documents
``get_valid_name``, ``get_alternative_name``, ``get_available_name``,
``generate_filename``, ``_save`` and ``_open`` as the extension points of
every storage, and django-storages documents class attributes as
configuration (``location = "media"``). :class:`SubclassContract` subclasses
the fixture's storage class with each hook overridden and checks it is
obeyed, through ``save()``, ``open()`` and a ``FileField``'s ``FieldFile``;
:class:`ClassAttributesContract` does the same for options given as class
attributes.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import types
import uuid
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db.models import FileField

from stowage.testing.contract_helpers import read_back

__all__ = ["ClassAttributesContract", "SubclassContract"]


def _subclass(storage: Any, attributes: dict[str, Any], **changes: Any) -> Any:
    """Return a new storage of a subclass of ``storage``'s class, built with its arguments.

    ``changes`` replace constructor keywords; a value of None drops the keyword.
    """
    args, kwargs = getattr(storage, "_constructor_args", ((), {}))
    kwargs = {**kwargs, **changes}
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    # Declared as a project's class would be: stowage's own classes are library code.
    namespace = {"__module__": "project.storages", **attributes}
    cls = type(f"Project{type(storage).__name__}", (type(storage),), namespace)
    return cls(*args, **kwargs)


class SubclassContract:
    """Django's hooks and django-storages' class attributes, as a subclass uses them."""

    # -- Django's hooks (any storage) ----------------------------------------------

    def test_overwrite_recipe_replaces_the_file(self, storage: Any) -> None:
        """The common "overwrite storage" recipe: get_available_name deletes and keeps the name."""

        def get_available_name(self: Any, name: str, max_length: int | None = None) -> str:
            self.delete(name)
            return name

        custom = _subclass(storage, {"get_available_name": get_available_name})
        first = custom.save("recipe/a.txt", ContentFile(b"first"))
        second = custom.save("recipe/a.txt", ContentFile(b"second"))
        assert first == second == "recipe/a.txt"
        assert read_back(custom, "recipe/a.txt") == b"second"
        assert custom.listdir("recipe")[1] == ["a.txt"]

    def test_get_alternative_name_decides_alternatives(self, storage: Any) -> None:
        """An overridden get_alternative_name gives the names of later saves."""

        def get_alternative_name(self: Any, file_root: str, file_ext: str) -> str:
            return f"{file_root}-v{uuid.uuid4().hex[:6]}{file_ext}"

        custom = _subclass(storage, {"get_alternative_name": get_alternative_name})
        first = custom.save("alt/a.txt", ContentFile(b"1"))
        second = custom.save("alt/a.txt", ContentFile(b"2"))
        assert first == "alt/a.txt"
        assert second.startswith("alt/a-v")
        assert second.endswith(".txt")
        assert read_back(custom, first) == b"1"
        assert read_back(custom, second) == b"2"

    def test_save_and_open_call_the_subclass_hooks(self, storage: Any) -> None:
        """save() goes through _save and open() through _open, as in Django."""
        calls: list[tuple[str, str]] = []
        parent: Any = type(storage)

        def _save(self: Any, name: str, content: Any) -> str:
            calls.append(("_save", name))
            return str(parent._save(self, name, content))

        def _open(self: Any, name: str, mode: str = "rb") -> Any:
            calls.append(("_open", name))
            return parent._open(self, name, mode)

        custom = _subclass(storage, {"_save": _save, "_open": _open})
        first = custom.save("hooks/a.txt", ContentFile(b"1"))
        second = custom.save("hooks/a.txt", ContentFile(b"2"))
        assert first != second
        assert read_back(custom, second) == b"2"
        assert calls == [("_save", first), ("_save", second), ("_open", second)]

    def test_get_valid_name_and_generate_filename_reach_the_field(self, storage: Any) -> None:
        """A FieldFile saves through generate_filename, get_valid_name and an upload_to callable."""

        def get_valid_name(self: Any, name: str) -> str:
            return name.upper()

        custom = _subclass(storage, {"get_valid_name": get_valid_name})

        def upload_to(instance: Any, filename: str) -> str:
            return f"field/{instance.owner}/{filename}"

        field = FileField(storage=custom, upload_to=upload_to, max_length=100)
        field.set_attributes_from_name("document")
        # FieldFile needs only attributes of the instance, not a saved model.
        instance: Any = types.SimpleNamespace(owner="ada")
        field_file = field.attr_class(instance, field, None)
        field_file.save("report.txt", ContentFile(b"field"), save=False)
        assert field_file.name == "field/ada/REPORT.TXT"
        assert read_back(custom, "field/ada/REPORT.TXT") == b"field"
        assert instance.document == "field/ada/REPORT.TXT"


class ClassAttributesContract:
    """django-storages' idioms: options as class attributes, a per-file parameters hook.

    For stowage storages (and any storage configured the same way); Django's
    own storages take their configuration from ``__init__`` only. The
    fixture's constructor arguments must reach the same files when used again
    (a memory storage needs its ``namespace``).
    """

    def test_get_object_parameters_is_asked_for_each_file(self, storage: Any) -> None:
        """An overridden get_object_parameters is asked per written file, or refused clearly."""
        from stowage.drivers.base import Capability
        from stowage.exceptions import UnsupportedOperation

        asked: list[str] = []
        parent: Any = type(storage)

        def get_object_parameters(self: Any, name: str) -> dict[str, Any]:
            asked.append(name)
            return dict(parent.get_object_parameters(self, name))

        custom = _subclass(storage, {"get_object_parameters": get_object_parameters})
        if Capability.OBJECT_PARAMETERS not in custom.driver.capabilities:
            with pytest.raises(UnsupportedOperation, match="per-file upload parameters"):
                custom.save("params/a.txt", ContentFile(b"a"))
            assert not custom.exists("params/a.txt")
        else:
            saved = custom.save("params/a.txt", ContentFile(b"a"))
            with custom.open("params/b.txt", "wb") as handle:
                handle.write(b"b")
            saved_async = asyncio.run(custom.asave("params/c.txt", ContentFile(b"c")))
            assert asked == [saved, "params/b.txt", saved_async]
            assert read_back(custom, "params/b.txt") == b"b"
            assert read_back(custom, saved_async) == b"c"

    def test_class_attributes_configure_the_storage(self, storage: Any) -> None:
        """location and file_overwrite as class attributes configure a subclass."""
        owns_location = "location" in storage.driver_options.__dataclass_fields__
        base = storage.driver_options.location if owns_location else storage.options.location
        join = os.path.join if owns_location else posixpath.join
        custom = _subclass(
            storage,
            {"location": join(base, "media"), "file_overwrite": True},
            location=None,
            file_overwrite=None,
        )
        assert custom.save("a.txt", ContentFile(b"one")) == "a.txt"
        assert custom.save("a.txt", ContentFile(b"two")) == "a.txt"
        assert read_back(storage, "media/a.txt") == b"two"
        assert storage.listdir("media")[1] == ["a.txt"]

    def test_options_win_over_class_attributes(self, storage: Any) -> None:
        """A constructor keyword (OPTIONS) beats the class attribute of the same option."""
        custom = _subclass(storage, {"file_overwrite": True}, file_overwrite=False)
        assert custom.file_overwrite is False
        first = custom.save("win.txt", ContentFile(b"1"))
        second = custom.save("win.txt", ContentFile(b"2"))
        assert first != second
