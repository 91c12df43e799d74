"""Load the server plugins and share fixtures across the suite."""

import os
import pkgutil
from pathlib import Path

import pytest

import tests.servers

# Every client is given explicit credentials; should one still fall back to a
# default credential chain, its metadata probe goes to a closed loopback port,
# never to a cloud metadata endpoint.
_NOWHERE = "http://127.0.0.1:9"
for _variable, _value in {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_METADATA_ENDPOINT": _NOWHERE,
    "AZURE_MSI_ENDPOINT": f"{_NOWHERE}/msi/token",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "NO_GCE_CHECK": "True",
}.items():
    os.environ.setdefault(_variable, _value)

pytest_plugins = [
    f"tests.servers.{module.name}"
    for module in pkgutil.iter_modules(tests.servers.__path__)
    if not module.name.startswith("_")
]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Dump what the conformance kit checked and refused, per backend, for docs/conformance.md."""
    from stowage.testing import report

    if report.results():
        root = Path(__file__).resolve().parent.parent
        artifacts = Path(os.environ.get("STOWAGE_TEST_ARTIFACTS") or root / "test-artifacts")
        report.write(artifacts / "conformance.json")


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the directory where test servers write their logs."""
    return tmp_path_factory.mktemp("server-logs")
