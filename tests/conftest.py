"""Load the server plugins and share fixtures across the suite."""

import pkgutil
from pathlib import Path

import pytest

import tests.servers

pytest_plugins = [
    f"tests.servers.{module.name}"
    for module in pkgutil.iter_modules(tests.servers.__path__)
    if not module.name.startswith("_")
]


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the directory where test servers write their logs."""
    return tmp_path_factory.mktemp("server-logs")
