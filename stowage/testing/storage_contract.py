"""Check any Django storage against what Django's tests pin, plus stowage's additions."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["StorageContract"]


class StorageContract:
    """The behaviours every Django storage must have; subclass and supply ``storage``."""

    @pytest.fixture
    def storage(self) -> Any:
        """Return an empty storage for each test; subclasses override this."""
        raise NotImplementedError("supply a 'storage' fixture")
