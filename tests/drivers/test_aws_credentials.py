"""AWS credentials found as the SDKs find them, against loopback fakes of the AWS endpoints.

The container endpoint, the web-identity exchange at STS and the instance
metadata service are small HTTP servers on 127.0.0.1 started here; nothing
reaches a real AWS address.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from stowage import S3Storage
from stowage.drivers._aws_credentials import CredentialChain
from stowage.exceptions import AccessDenied, ServiceUnavailable
from tests.servers.moto import MotoServer
from tests.servers.moto_auth import AuthMotoServer

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class FakeAws:
    """One loopback HTTP server answering as the container, STS and IMDS endpoints do."""

    url: str
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    expires_in: dt.timedelta = dt.timedelta(hours=1)
    issued: int = 0
    fail: bool = False
    #: Keys to hand out instead of made-up ones (a real user's, on a verifying server).
    fixed: dict[str, str] | None = None

    def keys(self) -> dict[str, Any]:
        self.issued += 1
        if self.fixed is not None:
            expiration = dt.datetime.now(dt.UTC) + self.expires_in
            return {**self.fixed, "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return {
            "AccessKeyId": f"ASIAFAKE{self.issued}",
            "SecretAccessKey": f"secret-{self.issued}",
            "Token": f"token-{self.issued}",
            "Expiration": (NOW + self.expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    fake = FakeAws("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append((self.command, self.path, dict(self.headers), body))
            if fake.fail:
                self.send_error(500)
                return
            if self.path == "/latest/api/token":
                reply = b"imds-session-token"
            elif self.path == "/latest/meta-data/iam/security-credentials/":
                reply = b"app-role\n"
            elif self.path.startswith("/sts"):
                keys = fake.keys()
                reply = (
                    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/'
                    '2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials>'
                    f"<AccessKeyId>{keys['AccessKeyId']}</AccessKeyId>"
                    f"<SecretAccessKey>{keys['SecretAccessKey']}</SecretAccessKey>"
                    f"<SessionToken>{keys['Token']}</SessionToken>"
                    f"<Expiration>{keys['Expiration']}</Expiration>"
                    "</Credentials></AssumeRoleWithWebIdentityResult>"
                    "</AssumeRoleWithWebIdentityResponse>"
                ).encode()
            else:
                reply = json.dumps(fake.keys()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def _chain(
    environ: dict[str, str], clock: Callable[[], dt.datetime] | None = None
) -> CredentialChain:
    # No shared files unless a test writes them; never the machine's own ~/.aws.
    base = {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return CredentialChain(environ={**base, **environ}, clock=clock or Clock())


def test_container_credentials_are_fetched_cached_and_renewed(fake_aws: FakeAws) -> None:
    clock = Clock()
    chain = _chain(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{fake_aws.url}/v2/credentials/abc",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth",
        },
        clock,
    )
    first = chain.get()
    assert (first.access_key, first.secret_key, first.token) == ("ASIAFAKE1", "secret-1", "token-1")
    assert first.source == "container"
    assert fake_aws.requests[0][2]["Authorization"] == "container-auth"
    clock.now = NOW + dt.timedelta(minutes=50)
    assert chain.get() is first  # ten minutes left: still fresh, no request
    assert len(fake_aws.requests) == 1
    clock.now = NOW + dt.timedelta(minutes=56)  # under five minutes left: renewed
    assert chain.get().access_key == "ASIAFAKE2"
    assert len(fake_aws.requests) == 2


def test_renewal_failure_keeps_keys_that_still_hold(fake_aws: FakeAws) -> None:
    clock = Clock()
    chain = _chain({"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{fake_aws.url}/creds"}, clock)
    first = chain.get()
    fake_aws.fail = True
    clock.now = NOW + dt.timedelta(minutes=57)
    assert chain.get() is first
    clock.now = NOW + dt.timedelta(minutes=61)
    with pytest.raises(ServiceUnavailable, match="container endpoint") as caught:
        chain.get()
    assert caught.value.__cause__ is not None


def test_container_token_file(fake_aws: FakeAws, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    chain = _chain(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{fake_aws.url}/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
        }
    )
    chain.get()
    assert fake_aws.requests[0][2]["Authorization"] == "from-file"


def test_web_identity_exchange(fake_aws: FakeAws, tmp_path: Path) -> None:
    token = tmp_path / "web-identity"
    token.write_text("eyJ.web.identity\n")
    chain = _chain(
        {
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/app",
            "AWS_ROLE_SESSION_NAME": "tests",
            "AWS_ENDPOINT_URL_STS": f"{fake_aws.url}/sts",
        }
    )
    found = chain.get()
    assert (found.access_key, found.token, found.source) == ("ASIAFAKE1", "token-1", "web identity")
    assert found.expires_at == NOW + dt.timedelta(hours=1)
    method, _, _, body = fake_aws.requests[0]
    form = urllib.parse.parse_qs(body.decode())
    assert method == "POST"
    assert form["Action"] == ["AssumeRoleWithWebIdentity"]
    assert form["RoleArn"] == ["arn:aws:iam::123456789012:role/app"]
    assert form["WebIdentityToken"] == ["eyJ.web.identity"]
    assert form["RoleSessionName"] == ["tests"]


def test_instance_metadata_v2(fake_aws: FakeAws) -> None:
    chain = _chain(
        {"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_aws.url}
    )
    assert chain.get().source == "instance"
    token_call, role_call, keys_call = fake_aws.requests
    assert token_call[:2] == ("PUT", "/latest/api/token")
    assert role_call[2]["X-Aws-Ec2-Metadata-Token"] == "imds-session-token"
    assert keys_call[1] == "/latest/meta-data/iam/security-credentials/app-role"


def test_environment_keys_come_before_roles(fake_aws: FakeAws) -> None:
    chain = _chain(
        {
            "AWS_ACCESS_KEY_ID": "AKIDENV",
            "AWS_SECRET_ACCESS_KEY": "env-secret",
            "AWS_SESSION_TOKEN": "env-token",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{fake_aws.url}/creds",
        }
    )
    found = chain.get()
    assert (found.access_key, found.token, found.source) == ("AKIDENV", "env-token", "environment")
    assert fake_aws.requests == []


def test_named_profile_from_shared_files(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
        "[media]\naws_access_key_id = AKIDMEDIA\naws_secret_access_key = m\n"
    )
    config = tmp_path / "config"
    config.write_text(
        "[profile backup]\naws_access_key_id = AKIDBACKUP\naws_secret_access_key = b\n"
        "aws_session_token = t\n[profile sso]\nsso_start_url = https://example.invalid\n"
    )
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}
    env_keys = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "e"}
    assert _chain(files).get().access_key == "AKIDDEFAULT"
    assert _chain({**files, **env_keys}).get().access_key == "AKIDENV"
    assert _chain({**files, **env_keys, "AWS_PROFILE": "media"}).get().access_key == "AKIDMEDIA"
    backup = CredentialChain(profile="backup", environ=files).get()
    assert (backup.access_key, backup.token) == ("AKIDBACKUP", "t")
    with pytest.raises(ImproperlyConfigured, match=r"'sso'.*not supported"):
        CredentialChain(profile="sso", environ=files).get()


def test_nothing_found_says_what_to_do() -> None:
    with pytest.raises(ImproperlyConfigured, match="No AWS credentials found"):
        _chain({}).get()


def test_obstore_provider_form(fake_aws: FakeAws) -> None:
    chain = _chain({"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{fake_aws.url}/creds"})
    provided = chain()
    assert provided == {
        "access_key_id": "ASIAFAKE1",
        "secret_access_key": "secret-1",
        "token": "token-1",
        "expires_at": NOW + dt.timedelta(hours=1),
    }
    assert "secret-1" not in repr(chain.get())


# -- the S3 storage on role credentials -------------------------------------------------------


def _keyless(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("access_key", "secret_key")}


@pytest.fixture
def role_environment(monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> FakeAws:
    """Point the credential chain at the fake container endpoint, and nowhere else."""
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{fake_aws.url}/v2/credentials")
    return fake_aws


def test_requests_are_signed_with_role_credentials(
    moto_auth: AuthMotoServer, role_environment: FakeAws
) -> None:
    """A verifying server accepts what the role's keys sign, and refuses other keys."""
    role_environment.fixed = {
        "AccessKeyId": moto_auth.access_key,
        "SecretAccessKey": moto_auth.secret_key,
    }
    storage = S3Storage(**_keyless(moto_auth.options()))
    name = storage.save(f"role/{uuid.uuid4().hex}.txt", ContentFile(b"by the role"))
    assert storage.open(name).read() == b"by the role"
    storage.delete(name)
    assert len(role_environment.requests) == 1  # fetched once, then cached

    role_environment.fixed = {
        "AccessKeyId": moto_auth.access_key,
        "SecretAccessKey": "not-the-secret",
    }
    with pytest.raises(AccessDenied):
        S3Storage(**_keyless(moto_auth.options())).save("role/x.txt", ContentFile(b"x"))


def test_every_url_kind_is_signed_with_role_credentials(
    s3_server: MotoServer, s3_bucket: str, role_environment: FakeAws
) -> None:
    keyed = S3Storage(**s3_server.options(s3_bucket))
    keyed.save("report.txt", ContentFile(b"role-signed"))
    role_environment.fixed = {
        "AccessKeyId": "ASIAROLE",
        "SecretAccessKey": "role-secret",
        "Token": "role-token",
    }
    storage = S3Storage(**_keyless(s3_server.options(s3_bucket)))
    url = storage.url("report.txt", parameters={"ResponseContentDisposition": "attachment"})
    assert "X-Amz-Credential=ASIAROLE" in url
    assert "X-Amz-Security-Token=role-token" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"role-signed"
        assert response.headers["Content-Disposition"] == "attachment"
    form = storage.presigned_post("uploads/form.bin", max_size=100)
    assert form["fields"]["x-amz-credential"].startswith("ASIAROLE/")
    assert form["fields"]["x-amz-security-token"] == "role-token"
    domain = S3Storage(
        **_keyless(s3_server.options(s3_bucket)),
        custom_domain=f"{s3_server.endpoint.removeprefix('http://')}/{s3_bucket}",
        url_protocol="http:",
        sign_custom_domain=True,
    )
    with urllib.request.urlopen(domain.url("report.txt"), timeout=10) as response:
        assert response.read() == b"role-signed"
