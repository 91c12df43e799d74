"""Drivers for the adapter's unit tests: the memory driver, instrumented."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stowage.config import option
from stowage.drivers.base import Capability, Download, DriverOptions, ObjectInfo
from stowage.drivers.memory import MemoryDriver, MemoryOptions


class RecordingDriver(MemoryDriver):
    """Record every call and the bytes each get() handed out.

    It stands for a service: callers treat its calls as waiting on a network.
    """

    waits_on_network = True

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.bytes_served = 0
        self.list_calls = 0

    def list(self, prefix: str, *, recursive: bool = False) -> Any:
        self.list_calls += 1
        return super().list(prefix, recursive=recursive)

    def delete(self, key: str) -> None:
        self.calls.append(("delete", key, {}))
        super().delete(key)

    def put(self, key: str, stream: Any, **kwargs: Any) -> ObjectInfo:
        self.calls.append(("put", key, kwargs))
        return super().put(key, stream, **kwargs)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        self.calls.append(("get", key, {"start": start, "end": end}))
        download = super().get(key, start=start, end=end)

        def counted() -> Any:
            for chunk in download:
                self.bytes_served += len(chunk)
                yield chunk

        return Download(download.info, counted())

    def head(self, key: str) -> ObjectInfo:
        self.calls.append(("head", key, {}))
        return super().head(key)

    def exists(self, key: str) -> bool:
        self.calls.append(("exists", key, {}))
        return super().exists(key)

    def names(self, method: str) -> list[str]:
        """Return the keys passed to ``method``, in order."""
        return [key for name, key, _ in self.calls if name == method]


class CheckThenWriteDriver(RecordingDriver):
    """A driver that cannot create atomically."""

    capabilities = MemoryDriver.capabilities - {Capability.ATOMIC_CREATE}


class SigningDriver(RecordingDriver):
    """A driver that signs URLs (deterministically, for assertions)."""

    capabilities = MemoryDriver.capabilities | {Capability.SIGN}

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        extra = "".join(f"&{k}={v}" for k, v in sorted((parameters or {}).items()))
        host = domain or "https://service.test"
        return f"{host}/{key}?method={method}&expires={int(expires.total_seconds())}{extra}"


class DomainSigningDriver(SigningDriver):
    """A driver that can also sign on a custom domain."""

    capabilities = SigningDriver.capabilities | {Capability.SIGN_CUSTOM_DOMAIN}


class PublicDriver(RecordingDriver):
    """A driver with public URLs of its own."""

    capabilities = MemoryDriver.capabilities | {Capability.PUBLIC_URL}

    def public_url(self, key: str) -> str:
        return f"https://public.test/{key}"


@dataclass(frozen=True)
class SecretOptions(DriverOptions):
    """Options with a secret, a setting fallback and an alias."""

    username: str = option("", doc="A user name.")
    password: str = option("", doc="A password.", secret=True)
    region: str = option("", doc="A region.", env="STOWAGE_TEST_REGION")


class SecretDriver(RecordingDriver):
    """A driver whose options hold a secret."""

    options_class = SecretOptions
    setting_fallbacks = {"password": "TEST_PASSWORD", "querystring_expire": "TEST_EXPIRE"}
    option_aliases = {"user": "username", "expiration": "querystring_expire"}

    def __init__(self, options: Any) -> None:
        super().__init__(MemoryOptions())
        self.options = options
