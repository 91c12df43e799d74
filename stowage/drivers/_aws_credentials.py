"""Find AWS credentials as the AWS SDKs do, and keep them fresh.

The S3 driver signs URLs itself (response overrides, custom domains, browser
POST forms), so it needs the credentials, not only a client that has them.
:class:`CredentialChain` finds them in the SDKs' order and serves both: the
driver's signer calls :meth:`CredentialChain.get`, and obstore's client takes
the chain as its ``credential_provider``, so requests and URLs always use the
same, current keys.

The order, first match wins:

1. a named profile, when one is asked for (option ``profile``,
   ``AWS_S3_SESSION_PROFILE``, or ``AWS_PROFILE``): static keys from the
   shared credentials or config file;
2. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``);
3. the ``default`` profile of the shared files;
4. web identity: ``AWS_WEB_IDENTITY_TOKEN_FILE`` and ``AWS_ROLE_ARN``,
   exchanged at STS (``AWS_ENDPOINT_URL_STS`` or the regional endpoint);
5. the container endpoint: ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` or
   ``_FULL_URI`` (with ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` or ``_FILE``);
6. the instance metadata service (IMDSv2), unless
   ``AWS_EC2_METADATA_DISABLED`` is true.

Temporary credentials are cached until five minutes before they expire, then
fetched again; should that fail while the old ones still hold, they are kept.
"""

from __future__ import annotations

import configparser
import datetime as dt
import functools
import json
import os
import threading
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stowage.exceptions import ConfigurationError, ServiceUnavailable
from stowage.records import record

__all__ = ["AwsCredentials", "CredentialChain"]

#: Temporary credentials are renewed this long before they expire.
REFRESH_BEFORE = dt.timedelta(minutes=5)
_CONTAINER_HOST = "http://169.254.170.2"
_IMDS = "http://169.254.169.254"
_STS_NS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}


@record(repr=False)
class AwsCredentials:
    """One set of AWS keys; temporary ones carry a token and an expiry."""

    access_key: str
    secret_key: str
    token: str | None = None
    expires_at: dt.datetime | None = None
    #: Where the keys came from ("environment", "profile default", "container" …).
    source: str = ""

    def __repr__(self) -> str:
        return f"<AwsCredentials from {self.source or 'options'}>"

    def fresh(self, now: dt.datetime) -> bool:
        """Tell whether the keys need no renewal yet."""
        return self.expires_at is None or self.expires_at - now > REFRESH_BEFORE

    def valid(self, now: dt.datetime) -> bool:
        """Tell whether the keys still work, renewal due or not."""
        return self.expires_at is None or self.expires_at > now


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class CredentialChain:
    """Resolve, cache and renew AWS credentials; callable as obstore's provider."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str = "us-east-1",
        timeout: float = 5.0,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._profile = profile or self._environ.get("AWS_PROFILE") or None
        self._region = region
        self._timeout = timeout
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._cached: AwsCredentials | None = None
        self._lock = threading.Lock()

    # -- what callers use ------------------------------------------------------------

    def get(self) -> AwsCredentials:
        """Return current credentials, fetching or renewing them when due."""
        with self._lock:
            now = self._clock()
            cached = self._cached
            if cached is not None and cached.fresh(now):
                return cached
            try:
                self._cached = self._resolve()
            except ServiceUnavailable:
                if cached is not None and cached.valid(now):
                    return cached
                raise
            return self._cached

    def __call__(self) -> dict[str, Any]:
        """Return the credentials in the form obstore's ``credential_provider`` expects."""
        found = self.get()
        return {
            "access_key_id": found.access_key,
            "secret_access_key": found.secret_key,
            "token": found.token,
            "expires_at": found.expires_at,
        }

    # -- the sources, in order ---------------------------------------------------------

    def _resolve(self) -> AwsCredentials:
        env = self._environ
        if self._profile:
            found = self._from_profile(self._profile)
            if found is None:
                raise ConfigurationError(
                    f"AWS profile {self._profile!r} has no aws_access_key_id and "
                    "aws_secret_access_key in the shared credentials or config file "
                    "(profiles that assume a role or use SSO are not supported: export "
                    "their keys, or run with the role attached to the machine)."
                )
            return found
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return AwsCredentials(
                env["AWS_ACCESS_KEY_ID"],
                env["AWS_SECRET_ACCESS_KEY"],
                env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None,
                source="environment",
            )
        sources: tuple[Callable[[], AwsCredentials | None], ...] = (
            functools.partial(self._from_profile, "default"),
            self._from_web_identity,
            self._from_container,
            self._from_instance,
        )
        for source in sources:
            found = source()
            if found is not None:
                return found
        raise ConfigurationError(
            "No AWS credentials found: give access_key and secret_key (OPTIONS or "
            "AWS_S3_ACCESS_KEY_ID / AWS_S3_SECRET_ACCESS_KEY), set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, name a profile, or run with a role (web identity, "
            "container or instance)."
        )

    def _shared_file(self, variable: str, default: str) -> Path:
        return Path(self._environ.get(variable) or Path.home() / ".aws" / default)

    def _from_profile(self, name: str) -> AwsCredentials | None:
        files = (
            (self._shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), name),
            (
                self._shared_file("AWS_CONFIG_FILE", "config"),
                name if name == "default" else f"profile {name}",
            ),
        )
        for path, section in files:
            parser = configparser.RawConfigParser()
            try:
                parser.read(path, encoding="utf-8")
            except (OSError, configparser.Error) as exc:
                raise ConfigurationError(f"Cannot read the AWS file {path}: {exc}") from None
            if not parser.has_section(section):
                continue
            values = parser[section]
            access, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
            if access and secret:
                token = values.get("aws_session_token") or values.get("aws_security_token")
                return AwsCredentials(access, secret, token or None, source=f"profile {name}")
        return None

    def _fetch(self, request: urllib.request.Request, what: str) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body: bytes = response.read()
                return body
        except OSError as exc:
            # Never the response body or the URL's query: they may carry a token.
            raise ServiceUnavailable(f"Fetching AWS credentials from {what} failed.") from exc

    def _from_web_identity(self) -> AwsCredentials | None:
        env = self._environ
        token_file, role = env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), env.get("AWS_ROLE_ARN")
        if not token_file or not role:
            return None
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {exc.strerror}"
            ) from None
        endpoint = env.get("AWS_ENDPOINT_URL_STS") or f"https://sts.{self._region}.amazonaws.com"
        form = urllib.parse.urlencode(
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": role,
                "RoleSessionName": env.get("AWS_ROLE_SESSION_NAME") or "stowage",
                "WebIdentityToken": token,
            }
        ).encode()
        request = urllib.request.Request(endpoint, data=form, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        body = self._fetch(request, "STS (web identity)")
        try:
            found = ET.fromstring(body).find(".//sts:Credentials", _STS_NS)
            if found is None:
                raise ValueError("no Credentials element")
            text = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in found}
            return AwsCredentials(
                text["AccessKeyId"],
                text["SecretAccessKey"],
                text.get("SessionToken") or None,
                _parse_time(text["Expiration"]),
                source="web identity",
            )
        except (ET.ParseError, KeyError, ValueError) as exc:
            raise ServiceUnavailable("STS answered web identity with no credentials.") from exc

    def _from_container(self) -> AwsCredentials | None:
        env = self._environ
        relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        url = (
            _CONTAINER_HOST + relative
            if relative
            else env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        )
        if not url:
            return None
        request = urllib.request.Request(url)
        token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            try:
                token = Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"Cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {token_file}: "
                    f"{exc.strerror}"
                ) from None
        if token:
            request.add_header("Authorization", token)
        return _from_json(self._fetch(request, "the container endpoint"), "container")

    def _from_instance(self) -> AwsCredentials | None:
        env = self._environ
        if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
            return None
        base = (env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or _IMDS).rstrip("/")
        token_request = urllib.request.Request(f"{base}/latest/api/token", method="PUT")
        token_request.add_header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        token = self._fetch(token_request, "the instance metadata service").decode()
        path = f"{base}/latest/meta-data/iam/security-credentials/"
        role_request = urllib.request.Request(path)
        role_request.add_header("X-aws-ec2-metadata-token", token)
        role = self._fetch(role_request, "the instance metadata service").decode().split()[0]
        request = urllib.request.Request(path + role)
        request.add_header("X-aws-ec2-metadata-token", token)
        return _from_json(self._fetch(request, "the instance metadata service"), "instance")


def _from_json(body: bytes, source: str) -> AwsCredentials:
    """Read the JSON the container endpoint and the instance service answer."""
    try:
        data = json.loads(body)
        expiration = data.get("Expiration")
        return AwsCredentials(
            data["AccessKeyId"],
            data["SecretAccessKey"],
            data.get("Token") or None,
            _parse_time(expiration) if expiration else None,
            source=source,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServiceUnavailable(f"The {source} credentials answer was not understood.") from exc
