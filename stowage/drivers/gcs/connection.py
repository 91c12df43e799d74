"""Make the Google client on first use, and run each request under the retry policy.

The client library loads at the first use of a storage, not when a storage
is declared (models, settings): it takes a few hundred milliseconds. It
makes the credentials and the base URL, and sends what stowage does not:
the chunks of a resumable upload of unknown length, a streamed body, IAM
signatures. Everything else goes through :attr:`Connection.json`
(:mod:`~stowage.drivers.gcs.json_api`).

Every request runs under the drivers' one
:class:`~stowage.drivers.retry.RetryPolicy` (the client's own retries are
off). Each attempt is translated, so the policy sees stowage's errors and
repeats only the transient ones (connection errors, 408, 429, 5xx), and
only for calls safe to repeat: reads, listings, deletes, metadata. A create
(``ifGenerationMatch=0``) is repeated as well, and :meth:`Connection.create`
settles its one ambiguity: a retry that finds the name taken may be finding
the object its own first attempt stored before the answer was lost.

A resumable upload is not repeated as a whole (its stream was read once);
the client sends it one request at a time, and :meth:`Connection.per_request`
has the policy retry each of those: a chunk already in hand goes to the
session again, at the same offset.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

from stowage.drivers.gcs import errors
from stowage.drivers.gcs.json_api import JsonApi, json_api
from stowage.drivers.gcs.options import GCSOptions
from stowage.drivers.retry import RetryPolicy
from stowage.exceptions import (
    AlreadyExists,
    ConfigurationError,
    MissingDependency,
    translate,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

__all__ = ["DEFAULT_ENDPOINT", "Connection", "PerRequest"]

_T = TypeVar("_T")

DEFAULT_ENDPOINT: Final = "https://storage.googleapis.com"


class PerRequest:
    """Retry each request of a client transfer under the policy: the client's own hook.

    The client's media transfers call ``retry(request)`` for every request
    they send (a resumable session's start, each chunk, with its bytes in
    hand) and send what it returns; this one sends it under the policy.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, request: Callable[[], _T]) -> Callable[[], _T]:
        """Return ``request`` wrapped to run under the policy, on transient failures only."""
        return functools.partial(self._policy.run, request, retryable=errors.transient_failure)


def _stop_untraced_bucket_lookups(client: Any) -> None:
    """Keep ``client`` from looking its bucket up in the background when no trace records it.

    From google-cloud-storage 3.17 a client's first call on a bucket starts a
    thread that GETs the bucket's metadata, to label OpenTelemetry spans. With
    the client's tracing off nothing reads those labels: the request is only a
    cost, and a 403 for credentials without ``storage.buckets.get``.
    """
    try:
        from google.cloud.storage import (  # type: ignore[import-untyped]
            _opentelemetry_tracing as tracing,
        )
    except ImportError:
        return
    if not getattr(tracing, "enable_otel_traces", False) and getattr(
        client, "_bucket_metadata_cache", None
    ):
        client._bucket_metadata_cache = None


class Connection:
    """Hold one driver's client and bucket, made on first use, and run calls on them."""

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
        #: The JSON API's base URL when not the service's own.
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        try:
            importlib.import_module("google.cloud.storage")
        except ImportError as exc:
            raise MissingDependency(
                "The 'gcs' storage driver needs the 'gcs' extra: "
                f"pip install 'django-stowage[gcs]' (missing module {exc.name!r})."
            ) from exc
        # retry_timeout 0 turns retries off, whatever max_retries says.
        self.retry = (
            options.retry_policy(deadline=options.retry_timeout)
            if options.retry_timeout
            else RetryPolicy.for_retries(0)
        )
        self.per_request = PerRequest(self.retry)
        self.lock = threading.Lock()
        self.client: Any = None
        self._bucket: Any = None
        self._json: JsonApi | None = None
        #: The credentials that sign URLs, known once the client is made.
        self.signer: Credentials | None = None

    @property
    def base_url(self) -> str:
        """Return the base URL of the JSON API and of unsigned object URLs."""
        return self.endpoint or DEFAULT_ENDPOINT

    @property
    def bucket(self) -> Any:
        """Return the client's bucket object, creating the client on first use."""
        bucket = self._bucket
        if bucket is None:
            with self.lock:
                if self._bucket is None:
                    what = "connecting to Google Cloud Storage"
                    with translate(what, errors.mapper(what, bucket=self.bucket_name)):
                        self.client = self._connect()
                        self._json = json_api(self.client, self.options.timeout)
                    self._bucket = self.client.bucket(self.bucket_name)
                bucket = self._bucket
        return bucket

    @property
    def json(self) -> JsonApi:
        """Return the sender of the JSON API's reads, made with the client."""
        while (api := self._json) is None:
            self.bucket  # noqa: B018 - creates the client, and the sender with it
        return api

    def path_of(self, key: str | None = None) -> tuple[str, dict[str, str]]:
        """Return the JSON API path of the object at ``key`` (None: of the bucket).

        With it, the query every request there carries (the billed project).
        """
        bucket = self.bucket
        query = {"userProject": bucket.user_project} if bucket.user_project else {}
        if key is None:
            return bucket.path, query
        return f"{bucket.path}/o/{quote(key, safe='')}", query

    def close(self) -> None:
        """Close the client's HTTP connections; a later call opens new ones."""
        with self.lock:
            client, self.client, self._bucket = self.client, None, None
            api, self._json = self._json, None
        if client is not None:
            client.close()
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

    def _connect(self) -> Any:
        import google.auth
        import google.auth.exceptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[import-untyped]

        options = self.options
        given, project = self._load_credentials()
        if options.anonymous or (given is None and self._emulator):
            api_credentials: Credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        elif given is not None:
            api_credentials = given
        else:
            try:
                api_credentials, project = google.auth.default()
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise ConfigurationError(
                    "No Google Cloud credentials: set option 'credentials' (a service-account "
                    "key file or dict), GOOGLE_APPLICATION_CREDENTIALS, or run where "
                    "Application Default Credentials exist; or set 'anonymous' for an emulator."
                ) from exc
        if given is not None:
            self.signer = given
        elif not options.anonymous:
            self.signer = api_credentials
        client_options = {"api_endpoint": self.endpoint} if self.endpoint else None
        client = storage.Client(
            project=options.project_id or project,
            credentials=api_credentials,
            client_options=client_options,
        )
        _stop_untraced_bucket_lookups(client)
        return client

    def _load_credentials(self) -> tuple[Credentials | None, str | None]:
        import google.auth.exceptions
        from google.auth.credentials import Credentials

        value = self.options.credentials
        if value is None:
            return None, None
        if isinstance(value, Credentials):
            return value, getattr(value, "project_id", None)
        try:
            if isinstance(value, Mapping):
                info = dict(value)
            else:
                with open(value, encoding="utf-8") as handle:
                    info = json.load(handle)
            return _credentials_from_info(info)
        except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as exc:
            # The message names the problem (a missing field, an unreadable
            # file), never the key material.
            raise ConfigurationError(
                f"Option 'credentials' could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc


def _credentials_from_info(info: Any) -> tuple[Credentials, str | None]:
    """Build credentials from a key file's content, accepting only known kinds.

    google-auth's generic loaders are deprecated for accepting any kind of
    configuration (some run commands or fetch URLs); these three only sign or
    refresh tokens.
    """
    from google.auth import impersonated_credentials
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        credentials: Credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        return credentials, info.get("project_id")
    if kind == "authorized_user":
        credentials = user_credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
        return credentials, info.get("quota_project_id")
    if kind == "impersonated_service_account":
        credentials = impersonated_credentials.Credentials.from_impersonated_service_account_info(  # type: ignore[no-untyped-call]
            info
        )
        return credentials, None
    raise ConfigurationError(
        f"Option 'credentials' holds credentials of type {kind!r}; this option takes "
        "'service_account', 'authorized_user' or 'impersonated_service_account'. For other "
        "kinds (external_account …) pass a google.auth Credentials object, or leave the "
        "option unset and point GOOGLE_APPLICATION_CREDENTIALS at the file."
    )
