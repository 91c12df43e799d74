"""Keep a storage's secret options out of pickles and migrations.

Pickled storages land in caches and task queues, and ``deconstruct()`` is
written into migration files: neither may carry a password or key. A pickle
leaves its secrets in the process that made it, under a token; a storage
unpickled in another process reads them again from the class attribute, the
Django setting or the environment variable that gave them, as a storage
rebuilt from ``deconstruct()`` does.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from django.utils.deconstruct import deconstructible

from stowage.config import restore_secrets, split_secrets
from stowage.django_storages import names_for
from stowage.subclassing import class_options

__all__ = ["SecretSafePickling", "deconstructible_without_secrets"]

Deconstructed = tuple[str, tuple[Any, ...], dict[str, Any]]

#: Secret options of the storages this process pickled, by the token each pickle carries.
_PICKLED_SECRETS: dict[str, dict[str, dict[str, Any]]] = {}


_S = TypeVar("_S", bound=type[Any])


def deconstructible_without_secrets(cls: _S) -> _S:
    """Apply Django's ``@deconstructible``, then drop secret options from its output.

    Migrations write ``deconstruct()`` into source files: a password or key
    must never land there. Secrets come back from settings or the environment.
    """
    plain = deconstructible(cls).deconstruct

    def deconstruct(obj: Any) -> Deconstructed:
        """Return what migrations store, without any secret option."""
        path, args, kwargs = plain(obj)
        return path, args, {k: v for k, v in kwargs.items() if k not in obj._secrets}

    cls.deconstruct = deconstruct
    return cls


class SecretSafePickling:
    """Pickle a storage without its secrets; a mixin of :class:`stowage.storage.Storage`."""

    # Set by the storage: the driver's options and the names of secret options.
    driver_options: Any
    _secrets: frozenset[str] | set[str]
    setting_fallbacks: ClassVar[Mapping[str, str]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the storage without its secrets (pickles land in caches and queues).

        The secrets stay in this process, under a token the pickle carries; a
        storage unpickled elsewhere reads them from settings or the
        environment, as a storage rebuilt from ``deconstruct()`` does.
        """
        state = self.__dict__.copy()
        state["_driver"] = None
        state["_url_policy"] = None
        state.pop("_lock", None)
        held: dict[str, dict[str, Any]] = {}
        state["driver_options"], held["driver_options"] = split_secrets(self.driver_options)
        args, kwargs = state.get("_constructor_args", ((), {}))
        state["_constructor_args"] = (
            args,
            {k: v for k, v in kwargs.items() if k not in self._secrets},
        )
        held["_constructor_args"] = {k: v for k, v in kwargs.items() if k in self._secrets}
        if any(held.values()):
            token = state.setdefault("_secrets_token", secrets.token_hex(16))
            self._secrets_token = token
            _PICKLED_SECRETS[token] = held
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        held = _PICKLED_SECRETS.get(state.get("_secrets_token", ""))
        fallbacks = names_for(state["_driver_class"]).setting_fallbacks(self.setting_fallbacks)
        driver_class = state["_driver_class"]
        state["driver_options"] = restore_secrets(
            state["driver_options"],
            None if held is None else held["driver_options"],
            fallbacks,
            class_options(
                type(self),
                (driver_class.options_class,),
                names_for(driver_class).option_aliases,
                {},
            ),
        )
        if held is not None:
            args, kwargs = state["_constructor_args"]
            state["_constructor_args"] = (args, {**kwargs, **held["_constructor_args"]})
        self.__dict__.update(state)
        self._lock = threading.Lock()
