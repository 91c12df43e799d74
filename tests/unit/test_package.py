"""The package as a whole: imports without extras, __all__, docstrings."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stowage

SDKS = ("obstore", "google", "azure", "asyncssh", "paramiko", "httpx", "boto3", "botocore")


def _modules() -> list[str]:
    found = ["stowage"]
    for info in pkgutil.walk_packages(stowage.__path__, "stowage."):
        found.append(info.name)
    return found


def test_import_stowage_needs_no_extra() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {SDKS!r}:
                    raise ImportError("blocked " + name, name=name)
        sys.meta_path.insert(0, Block())
        import django
        from django.conf import settings
        settings.configure()
        django.setup()
        import stowage
        from stowage.exceptions import MissingDependency
        stowage.MemoryStorage()
        for cls, options in (
            (stowage.S3Storage, dict(bucket_name="b")),
            (stowage.GCSStorage, dict(bucket_name="b")),
            (stowage.AzureStorage, dict(azure_container="c", account_name="a")),
        ):
            try:
                cls(**options).exists("x")
            except MissingDependency as exc:
                assert "pip install 'django-stowage[" in str(exc), exc
            else:
                raise SystemExit(f"{{cls.__name__}} did not report its missing extra")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {SDKS!r})
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_all_and_documents_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for public in module.__all__:
        obj = getattr(module, public)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name}.{public} has no docstring"


def test_public_names() -> None:
    for name in stowage.__all__:
        assert getattr(stowage, name) is not None
    assert issubclass(stowage.S3Storage, stowage.Storage)
    assert issubclass(stowage.ManifestStaticStorage, stowage.StaticStorage)


def test_drivers_know_nothing_of_django() -> None:
    """The design's layering: Django settings and helpers are the adapter's, not a driver's."""
    drivers = Path(stowage.__file__).parent / "drivers"
    offenders = [
        str(path.relative_to(drivers))
        for path in sorted(drivers.rglob("*.py"))
        if re.search(r"^\s*(from|import) django\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_no_module_is_over_600_lines() -> None:
    """Small modules: a big one is split by concern (a driver becomes a package)."""
    root = Path(stowage.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for path in root.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 600} == {}
