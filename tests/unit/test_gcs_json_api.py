"""GCS listings on stowage's own connections: where they go, and what their failures become."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stowage.drivers.exchange import Response
from stowage.drivers.gcs import errors
from stowage.drivers.gcs.json_api import JsonApi, SessionApi, json_api
from stowage.exceptions import AccessDenied, NotFound, ServiceError, ServiceUnavailable, translate


class _Anonymous:
    def before_request(self, request: Any, method: str, url: str, headers: dict[str, str]) -> None:
        headers["authorization"] = "Bearer t"


def _client(base_url: str, *, mtls: bool = False) -> Any:
    return SimpleNamespace(
        _http=SimpleNamespace(is_mtls=mtls),
        _connection=SimpleNamespace(API_BASE_URL=base_url),
        _credentials=_Anonymous(),
    )


def test_reads_go_to_the_clients_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    api = json_api(_client("https://storage.example:8443/prefix"), 5)
    assert type(api) is JsonApi
    assert (api.pool.origin, api._root) == ("https://storage.example:8443", "/prefix/storage/v1")


def test_the_client_sends_where_stowage_cannot_go(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(json_api(_client("https://storage.example", mtls=True), 5)) is SessionApi
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.example:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert type(json_api(_client("https://storage.example"), 5)) is SessionApi


def _answering(status: int, body: bytes) -> JsonApi:
    api = JsonApi("http://127.0.0.1:9", _Anonymous(), 5)
    response = Response(status, {}, body, False)  # type: ignore[arg-type]
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
    assert "the service says why" in str(caught.value.__cause__)


def test_an_answer_is_its_json() -> None:
    api = _answering(200, b'{"items": [{"name": "d/f"}], "prefixes": ["d/e/"]}')
    assert api.get("/b/b/o", {}) == {"items": [{"name": "d/f"}], "prefixes": ["d/e/"]}


def test_a_refused_certificate_is_the_services_error_not_retried() -> None:
    from stowage.drivers.http_pool import UntrustedCertificate
    from stowage.drivers.retry import transient

    api = JsonApi("https://127.0.0.1:9", _Anonymous(), 5)

    def refused(*args: Any, **kwargs: Any) -> Response:
        raise UntrustedCertificate("certificate verify failed: self-signed certificate")

    api.pool.send = refused  # type: ignore[method-assign]
    mapper = errors.mapper("listing 'd'", bucket="b", reading=False)
    refusal = pytest.raises(ServiceError, match="TLS certificate refused")
    with refusal as caught, translate("listing 'd'", mapper):
        api.get("/b/b/o", {})
    assert not transient(caught.value)
