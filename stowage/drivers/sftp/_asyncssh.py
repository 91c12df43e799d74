"""asyncssh, imported at its first use instead of with the SFTP driver.

Importing asyncssh takes longer than the rest of the backend (about 125 ms
here, most of it its cryptography and a search for liboqs). A settings
module or model that declares an SFTP storage, and a process that never
touches it (``migrate``, a worker serving other requests), should not pay
it; the first connection does, as the GCS backend loads its client library
at the first request.

The driver's modules name ``asyncssh`` as usual; at run time that name is
:data:`asyncssh`, which imports the package at its first attribute lookup
(Python's import lock makes that safe from any thread). A missing package
still fails when the driver is imported, as before.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

__all__ = ["asyncssh"]


class _Deferred:
    """Stand for a module, importing it at the first attribute lookup."""

    def __init__(self, name: str) -> None:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


asyncssh: Any = _Deferred("asyncssh")
