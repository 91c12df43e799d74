"""The drivers' error tables: first matching rule wins, applied through translate()."""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousFileOperation

from stowage.drivers.errors import ErrorTable, Rule
from stowage.exceptions import (
    AccessDenied,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnavailable,
    translate,
)


class ClientError(Exception):
    """A client library's error carrying an HTTP status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def status_of(exc: BaseException) -> int | None:
    return exc.status if isinstance(exc, ClientError) else None


TABLE = ErrorTable(
    Rule(404, NotFound, "{what}: no such object ({status})."),
    Rule(range(500, 600), ServiceUnavailable, "{what}: {host} failed: {detail}"),
    Rule(ClientError, ServiceError),
    Rule(TimeoutError, ServiceTimeout, "{what}: {host} did not answer ({name})."),
    Rule(lambda exc: "denied" in str(exc), AccessDenied),
    status=status_of,
)


def test_statuses_classes_and_predicates_pick_the_class_and_the_message() -> None:
    assert str(TABLE.lookup(ClientError(404, "nope"), "reading 'a'", host="h")) == (
        "reading 'a': no such object (404)."
    )
    failed = TABLE.lookup(ClientError(503, "busy"), "reading 'a'", host="h")
    assert isinstance(failed, ServiceUnavailable)
    assert str(failed) == "reading 'a': h failed: busy"
    other = TABLE.lookup(ClientError(418, "teapot"), "reading 'a'", host="h")
    assert type(other) is ServiceError
    assert str(other) == "reading 'a': teapot"
    timed_out = TABLE.lookup(TimeoutError(), "listing ''", host="h")
    assert isinstance(timed_out, ServiceTimeout)
    assert str(timed_out) == "listing '': h did not answer (TimeoutError)."
    assert isinstance(TABLE.lookup(RuntimeError("access denied"), "x"), AccessDenied)
    assert TABLE.lookup(RuntimeError("other"), "x") is None


def test_the_first_matching_rule_wins_and_extend_puts_rules_first() -> None:
    stricter = TABLE.extend(Rule(ClientError, AccessDenied, "{what}: refused"))
    assert isinstance(stricter.lookup(ClientError(404, "x"), "w"), AccessDenied)
    assert isinstance(TABLE.lookup(ClientError(404, "x"), "w"), NotFound)


def test_translate_chains_the_cause_and_falls_back_for_unknown_errors() -> None:
    cause = ClientError(500, "boom")
    with pytest.raises(ServiceUnavailable) as caught, TABLE.translate("writing 'b'", host="h"):
        raise cause
    assert caught.value.__cause__ is cause
    # No rule: translate()'s own mapping of built-in errors applies.
    with pytest.raises(NotFound), TABLE.translate("reading 'b'", host="h"):
        raise FileNotFoundError("gone")
    # Programming errors pass through untouched.
    with pytest.raises(KeyError), TABLE.translate("reading 'b'", host="h"):
        raise KeyError("bug")


def test_translate_lets_its_own_tree_unsafe_names_and_base_exceptions_through() -> None:
    own = NotFound("gone")
    with pytest.raises(NotFound) as caught, translate("reading 'b'"):
        raise own
    assert caught.value is own
    with pytest.raises(SuspiciousFileOperation), translate("reading '../b'"):
        raise SuspiciousFileOperation("unsafe")
    with pytest.raises(KeyboardInterrupt), translate("reading 'b'"):
        raise KeyboardInterrupt
    # Nothing raised: the block's value comes through, and no mapper is asked.
    with translate("reading 'b'", lambda exc: pytest.fail("asked")):
        value = 1
    assert value == 1
    # No mapper and nothing built-in matches: a ServiceError naming the error.
    with pytest.raises(ServiceError, match=r"^b: RuntimeError: odd$"), translate("b"):
        raise RuntimeError("odd")


def test_convert_returns_the_translated_error_chained() -> None:
    cause = ClientError(404, "missing")
    error = TABLE.convert(cause, "reading 'c'")
    assert isinstance(error, NotFound)
    assert error.__cause__ is cause


def test_the_detail_function_can_redact() -> None:
    table = ErrorTable(
        Rule(ConnectionError, ServiceUnavailable), detail=lambda e: str(e).replace("s3cret", "***")
    )
    error = table.lookup(ConnectionError("login s3cret refused"), "connecting")
    assert str(error) == "connecting: login *** refused"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # A timing that starts with 50 is not a 5xx answer.
        ("Error performing GET in 50.2ms - status code: 400 Bad Request: no", ServiceError),
        ("Error performing GET after 3 retries - status code: 503 Service Unavailable", None),
        ("HTTP status server error (502 Bad Gateway) for url", None),
        ("Error performing PUT - status code: 403 Forbidden: denied", AccessDenied),
        ("error sending request for url", None),
        ("operation timed out", ServiceTimeout),
    ],
)
def test_obstore_errors_map_by_status_not_by_digits(
    message: str, expected: type[Exception] | None
) -> None:
    from obstore import exceptions as obstore_errors

    from stowage.drivers._obstore import map_error

    error = map_error(obstore_errors.GenericError(message))
    if expected is None:
        assert isinstance(error, ServiceUnavailable)
    else:
        assert type(error) is expected
    assert str(error) == message
