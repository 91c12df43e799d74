"""Run stowage's contract over any Django storage: the conformance kit.

Subclass a contract in a pytest module and supply one fixture::

    import pytest
    from stowage.testing import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(location=str(tmp_path))   # empty for every test

Every ``test_*`` method of the contract then runs on ``MyStorage``. Class
attributes declare what a backend cannot do (``supports_url = False`` …);
the matching tests then check that the backend says so clearly instead of
being skipped. :class:`SubclassContract` checks that a project's subclass
overriding Django's hooks is obeyed, :class:`ClassAttributesContract` that
options given as class attributes are. :class:`AsyncStorageContract` adds the async API of stowage
storages on the same fixture. :class:`DriverContract` does the same one level
lower, for a stowage driver, with a ``driver`` fixture.

The kit needs pytest and configured Django settings (pytest-django does it).
"""

from typing import TYPE_CHECKING

from stowage.testing.async_contract import AsyncStorageContract
from stowage.testing.driver_contract import DriverContract
from stowage.testing.storage_contract import StorageContract
from stowage.testing.subclass_contract import ClassAttributesContract, SubclassContract

if TYPE_CHECKING:
    from stowage.testing.hostile_names import HostileNamesContract

__all__ = [
    "AsyncStorageContract",
    "ClassAttributesContract",
    "DriverContract",
    "HostileNamesContract",
    "StorageContract",
    "SubclassContract",
]


def __getattr__(name: str) -> object:
    # The hostile-names contract needs hypothesis; import it only when asked.
    if name == "HostileNamesContract":
        from stowage.testing.hostile_names import HostileNamesContract

        return HostileNamesContract
    raise AttributeError(name)
