"""Make the credentials and the sender on first use, and run each request under the retry policy.

google-auth loads at the first request of a storage, not when a storage is
declared (models, settings): it takes tens of milliseconds. It makes the
credentials (:mod:`~stowage.drivers.gcs.credentials`); stowage sends every
request itself, through :attr:`Connection.json`
(:mod:`~stowage.drivers.gcs.json_api`).

Every request runs under the drivers' one
:class:`~stowage.drivers.retry.RetryPolicy`. Each attempt is translated, so
the policy sees stowage's errors and repeats only the transient ones
(connection errors, 408, 429, 5xx), and only for calls safe to repeat:
reads, listings, deletes, metadata, each request of a resumable upload
with its bytes in hand. A create (``ifGenerationMatch=0``) is repeated as
well, and :meth:`Connection.create` settles its one ambiguity: a retry that
finds the name taken may be finding the object its own first attempt
stored before the answer was lost.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

from stowage.drivers.gcs import errors
from stowage.drivers.gcs.json_api import DEFAULT_ENDPOINT, JsonApi
from stowage.drivers.gcs.options import GCSOptions
from stowage.drivers.retry import RetryPolicy
from stowage.exceptions import AlreadyExists, MissingDependency, translate

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

__all__ = ["Connection"]

_T = TypeVar("_T")


class Connection:
    """Hold one driver's credentials and sender, made on first use, and run calls with them."""

    def __init__(self, options: GCSOptions) -> None:
        self.options = options
        self.bucket_name: str = options.bucket_name or ""
        endpoint = options.api_endpoint
        self._emulator = False
        if endpoint is None and os.environ.get("STORAGE_EMULATOR_HOST"):
            endpoint = os.environ["STORAGE_EMULATOR_HOST"]
            if "://" not in endpoint:
                endpoint = f"http://{endpoint}"
            self._emulator = True
        elif endpoint is None and os.environ.get("API_ENDPOINT_OVERRIDE"):
            # google-cloud-storage's variable for another endpoint (credentials still sent).
            endpoint = os.environ["API_ENDPOINT_OVERRIDE"]
        #: The JSON API's base URL when not the service's own.
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        for module in ("google.auth", "google.oauth2"):
            if _absent(module):
                raise MissingDependency(
                    "The 'gcs' storage driver needs the 'gcs' extra: "
                    f"pip install 'django-stowage[gcs]' (missing module {module!r})."
                )
        # retry_timeout 0 turns retries off, whatever max_retries says.
        self.retry = (
            options.retry_policy(deadline=options.retry_timeout)
            if options.retry_timeout
            else RetryPolicy.for_retries(0)
        )
        self.lock = threading.Lock()
        self._json: JsonApi | None = None
        #: The credentials requests carry, once made.
        self.credentials: Credentials | None = None
        #: The credentials that sign URLs (None: anonymous), known once made.
        self.signer: Credentials | None = None

    @property
    def base_url(self) -> str:
        """Return the base URL of the JSON API and of unsigned object URLs."""
        return self.endpoint or DEFAULT_ENDPOINT

    @property
    def json(self) -> JsonApi:
        """Return the sender of the JSON API's requests, made with the credentials on first use."""
        api = self._json
        if api is None:
            with self.lock:
                if self._json is None:
                    what = "connecting to Google Cloud Storage"
                    with translate(what, errors.mapper(what, bucket=self.bucket_name)):
                        self._json = self._connect()
                api = self._json
        return api

    def connect(self) -> None:
        """Make the credentials and the sender now, if not made yet (no request is sent)."""
        self.json  # noqa: B018 - made on first use

    def path_of(self, key: str | None = None) -> tuple[str, dict[str, str]]:
        """Return the JSON API path of the object at ``key`` (None: of the bucket).

        With it, a query for the request to add to.
        """
        path = f"/b/{quote(self.bucket_name, safe='')}"
        if key is None:
            return path, {}
        return f"{path}/o/{quote(key, safe='')}", {}

    def close(self) -> None:
        """Close the sender's connections; a later call opens new ones."""
        with self.lock:
            api, self._json = self._json, None
        if api is not None:
            api.close()

    def what(self, verb: str, key: str) -> str:
        """Name an operation on ``key`` for messages."""
        return f"{verb} {key!r} in bucket {self.bucket_name!r}"

    def call(self, what: str, operation: Callable[[], _T], *, reading: bool = True) -> _T:
        """Run ``operation``, safe to repeat, under the retry policy, each try translated.

        ``reading`` says a 404 means a missing object (else a missing bucket).
        """
        mapper = errors.mapper(what, bucket=self.bucket_name, reading=reading)

        def once() -> _T:
            with translate(what, mapper):
                return operation()

        return self.retry.run(once)

    def create(
        self,
        what: str,
        operation: Callable[[], _T],
        *,
        landed: Callable[[], _T | None],
        reading: bool = True,
    ) -> _T:
        """Run a create (``ifGenerationMatch=0``) under the retry policy, as :meth:`call`.

        A retry that finds the name taken asks ``landed`` whether the object
        there is the one this call sent (an earlier try stored it, its answer
        lost) and returns what it gives; otherwise, or at the first try, the
        name is taken: :class:`~stowage.exceptions.AlreadyExists`.
        """
        mapper = errors.mapper(what, bucket=self.bucket_name, creating=True, reading=reading)
        tries = 0

        def once() -> _T:
            nonlocal tries
            tries += 1
            try:
                with translate(what, mapper):
                    return operation()
            except AlreadyExists:
                found = landed() if tries > 1 else None
                if found is None:
                    raise
                return found

        return self.retry.run(once)

    def _connect(self) -> JsonApi:
        from stowage.drivers.gcs import credentials

        self.credentials, self.signer = credentials.load(self.options, emulator=self._emulator)
        return credentials.sender(self.endpoint, self.credentials, self.options.timeout)


def _absent(module: str) -> bool:
    """Tell whether ``module`` cannot be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True
