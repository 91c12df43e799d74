"""Find the driver class for a driver name, and say which extra it needs.

Built-in drivers are listed here by name; third-party drivers register under
the ``stowage.drivers`` entry-point group, and any driver can be given as
``"package.module:ClassName"``. Driver modules are imported only when a
storage using them is created, so ``import stowage`` needs no extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from stowage.exceptions import ConfigurationError, MissingDependency
from stowage.records import record

if TYPE_CHECKING:
    from stowage.drivers.base import Driver

__all__ = ["BUILTIN_DRIVERS", "DriverSpec", "load_driver"]


@record
class DriverSpec:
    """Locate one driver: its class path and the extra that installs its SDK."""

    path: str
    extra: str | None = None


BUILTIN_DRIVERS: dict[str, DriverSpec] = {
    "memory": DriverSpec("stowage.drivers.memory:MemoryDriver"),
    "local": DriverSpec("stowage.drivers.local:LocalDriver"),
    "s3": DriverSpec("stowage.drivers.s3:S3Driver", "s3"),
    "gcs": DriverSpec("stowage.drivers.gcs:GCSDriver", "gcs"),
    "azure": DriverSpec("stowage.drivers.azure:AzureDriver", "azure"),
    "sftp": DriverSpec("stowage.drivers.sftp:SFTPDriver", "sftp"),
    "ftp": DriverSpec("stowage.drivers.ftp:FTPDriver"),
    "webdav": DriverSpec("stowage.drivers.webdav:WebDAVDriver", "webdav"),
}


def _spec_for(name: str) -> DriverSpec:
    if name in BUILTIN_DRIVERS:
        return BUILTIN_DRIVERS[name]
    if ":" in name:
        return DriverSpec(name)
    from importlib.metadata import entry_points  # slow to import; needed only here

    for ep in entry_points(group="stowage.drivers"):
        if ep.name == name:
            return DriverSpec(ep.value)
    known = ", ".join(sorted(BUILTIN_DRIVERS))
    raise ConfigurationError(
        f"Unknown storage driver {name!r}. Use one of {known}, a registered "
        "'stowage.drivers' entry point, or 'package.module:DriverClass'."
    )


def load_driver(name: str) -> type[Driver[Any]]:
    """Import and return the driver class registered as ``name``."""
    from stowage.drivers.base import Driver

    spec = _spec_for(name)
    module_name, _, class_name = spec.path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if spec.extra is not None and not module_name.endswith(exc.name or "\0"):
            raise MissingDependency(
                f"The {name!r} storage driver needs the {spec.extra!r} extra: "
                f"pip install 'django-stowage[{spec.extra}]' (missing module {exc.name!r})."
            ) from exc
        raise ConfigurationError(f"Cannot import storage driver {name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise ConfigurationError(f"{spec.path!r} is not a stowage Driver class.")
    return cls
