"""The GCS JSON API on stowage's own connections: where requests go, what failures become."""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from stowage.drivers.exchange import Headers, Response
from stowage.drivers.gcs import credentials, errors
from stowage.drivers.gcs.json_api import INCOMPLETE, ApiError, JsonApi, Pools, SessionApi
from stowage.exceptions import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    translate,
)


class _Anonymous:
    def before_request(self, request: Any, method: str, url: str, headers: dict[str, str]) -> None:
        headers["authorization"] = "Bearer t"


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")


def test_requests_go_to_the_endpoint_on_stowages_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy(monkeypatch)
    api = credentials.sender("https://storage.example:8443/prefix", _Anonymous(), 5)  # type: ignore[arg-type]
    assert type(api) is JsonApi
    assert (api.pool.origin, api._root) == ("https://storage.example:8443", "/prefix/storage/v1")
    default = credentials.sender(None, _Anonymous(), 5)  # type: ignore[arg-type]
    assert default.pool.origin == "https://storage.googleapis.com"


def test_google_auths_session_sends_where_the_pool_cannot_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.example:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    api = credentials.sender("https://storage.example", anonymous, 5)
    assert type(api) is SessionApi
    assert api._origin == "https://storage.example"


def test_a_client_certificate_goes_through_the_session_at_the_mtls_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.auth.transport.requests import AuthorizedSession

    _no_proxy(monkeypatch)
    monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "true")

    def configured(session: Any, *args: Any) -> None:
        session._is_mtls = True  # as a certificate found by google-auth would make it

    monkeypatch.setattr(AuthorizedSession, "configure_mtls_channel", configured)
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    api = credentials.sender(None, anonymous, 5)
    assert type(api) is SessionApi
    assert api._origin == credentials.MTLS_ENDPOINT
    named = credentials.sender("https://storage.example", anonymous, 5)
    assert named._origin == "https://storage.example"  # a named endpoint is kept
    monkeypatch.setenv("GOOGLE_API_USE_MTLS_ENDPOINT", "never")
    assert credentials.sender(None, anonymous, 5)._origin == "https://storage.googleapis.com"


def test_the_mtls_endpoint_setting_is_obeyed_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy(monkeypatch)
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    monkeypatch.setenv("GOOGLE_API_USE_MTLS_ENDPOINT", "always")
    assert credentials.sender(None, anonymous, 5)._origin == credentials.MTLS_ENDPOINT
    monkeypatch.setenv("GOOGLE_API_USE_MTLS_ENDPOINT", "sometimes")
    with pytest.raises(ConfigurationError, match="GOOGLE_API_USE_MTLS_ENDPOINT is 'sometimes'"):
        credentials.sender(None, anonymous, 5)


def test_the_client_librarys_endpoint_override_is_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    from stowage.drivers.gcs.connection import Connection
    from stowage.drivers.gcs.options import GCSOptions

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("API_ENDPOINT_OVERRIDE", "https://storage.example:8443")
    assert Connection(GCSOptions(bucket_name="b")).base_url == "https://storage.example:8443"
    named = Connection(GCSOptions(bucket_name="b", api_endpoint="https://named.example"))
    assert named.base_url == "https://named.example"


def _answering(status: int, body: bytes, headers: Headers | None = None) -> JsonApi:
    api = JsonApi("http://127.0.0.1:9", _Anonymous(), Pools(5), None)
    response = Response(status, headers or Headers([]), body, False)
    api.pool.send = lambda *args, **kwargs: response  # type: ignore[method-assign]
    return api


@pytest.mark.parametrize(
    ("status", "expected", "reading"),
    [
        (403, AccessDenied, True),
        (401, AccessDenied, True),
        (404, NotFound, True),
        (404, ServiceError, False),  # a listing's 404: the bucket is missing
        (503, ServiceUnavailable, True),
        (429, ServiceUnavailable, True),
        (408, ServiceTimeout, True),
        (400, ServiceError, True),
        (412, ServiceError, True),  # a read pinned to a generation: the object changed
    ],
)
def test_failures_become_what_the_clients_would(
    status: int, expected: type[Exception], reading: bool
) -> None:
    api = _answering(status, b'{"error": {"code": 0, "message": "the service says why"}}')
    mapper = errors.mapper("listing 'd'", bucket="b", reading=reading)
    with pytest.raises(expected) as caught, translate("listing 'd'", mapper):
        api.get("/b/b/o", {"prefix": "d/"})
    assert type(caught.value) is expected
    assert isinstance(caught.value.__cause__, ApiError)
    assert caught.value.__cause__.code == status
    assert "the service says why" in str(caught.value.__cause__)


def test_a_create_refused_on_a_taken_name_is_already_exists() -> None:
    api = _answering(412, b'{"error": {"message": "At least one of the pre-conditions failed"}}')
    mapper = errors.mapper("writing 'a'", bucket="b", creating=True, reading=False)
    with pytest.raises(AlreadyExists), translate("writing 'a'", mapper):
        api.upload("/b/b", {"ifGenerationMatch": "0"}, b"x", "multipart/related")


def test_a_session_that_wants_more_is_an_answer_not_an_error() -> None:
    api = _answering(INCOMPLETE, b"", Headers([("Range", "bytes=0-262143")]))
    answer = api.resume(
        "http://127.0.0.1:9/upload/storage/v1/b/b/o?upload_id=1", b"x", "bytes 0-0/*"
    )
    assert (answer.status, answer.headers["range"]) == (INCOMPLETE, "bytes=0-262143")
    with pytest.raises(ApiError):
        _answering(INCOMPLETE, b"").get("/b/b/o", {})


def test_a_session_on_another_origin_gets_its_own_pool() -> None:
    api = JsonApi("http://127.0.0.1:9", _Anonymous(), Pools(5), None)
    sent: list[tuple[str, str, str]] = []

    def answer(pool: Any) -> Any:
        def send(method: str, target: str, headers: dict[str, str], body: Any = None) -> Response:
            sent.append((pool.origin, target, headers["Host"]))
            return Response(200, Headers([]), b"{}", False)

        return send

    api.pool.send = answer(api.pool)  # type: ignore[method-assign]
    api.resume("http://127.0.0.1:9/upload/x?upload_id=1", b"x", "bytes 0-0/1")
    other = api._pools.get("http", "127.0.0.2:7")
    other.send = answer(other)  # type: ignore[method-assign]
    api.resume("http://127.0.0.2:7/upload/x?upload_id=2", b"x", "bytes 0-0/1")
    assert sent == [
        ("http://127.0.0.1:9", "/upload/x?upload_id=1", "127.0.0.1:9"),
        ("http://127.0.0.2:7", "/upload/x?upload_id=2", "127.0.0.2:7"),
    ]


def test_an_answer_is_its_json() -> None:
    api = _answering(200, b'{"items": [{"name": "d/f"}], "prefixes": ["d/e/"]}')
    assert api.get("/b/b/o", {}) == {"items": [{"name": "d/f"}], "prefixes": ["d/e/"]}


def test_a_refused_certificate_is_the_services_error_not_retried() -> None:
    from stowage.drivers.http_pool import UntrustedCertificate
    from stowage.drivers.retry import transient

    api = JsonApi("https://127.0.0.1:9", _Anonymous(), Pools(5), None)

    def refused(*args: Any, **kwargs: Any) -> Response:
        raise UntrustedCertificate("certificate verify failed: self-signed certificate")

    api.pool.send = refused  # type: ignore[method-assign]
    mapper = errors.mapper("listing 'd'", bucket="b", reading=False)
    refusal = pytest.raises(ServiceError, match="TLS certificate refused")
    with refusal as caught, translate("listing 'd'", mapper):
        api.get("/b/b/o", {})
    assert not transient(caught.value)
