"""Check what a storage's URLs really give: access, expiry, response headers.

The tests here need a way to fetch a URL: a fixtures class returns one from
its ``fetch_url`` fixture (:func:`http_fetch` fetches over HTTP). Without
it the kit checks what the URL itself shows. Where the fixture's test
server does not enforce what a real service does (moto checks no expiry,
for one), the class says so with ``server_checks_expiry`` or
``server_applies_response_overrides``, and the kit checks, and records,
what can be checked there.
"""

from __future__ import annotations

import mimetypes
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple
from urllib.parse import unquote

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from stowage.testing.contract_helpers import DELIMITER_NAMES
from stowage.testing.report import CHECKED, REFUSED, record

__all__ = ["Fetch", "Fetched", "SignedUrlContract", "http_fetch"]

#: Seconds a short-lived URL lives in the expiry test.
_SHORT_LIFETIME = 1
#: Seconds waited past it before fetching again (clocks tick in whole seconds).
_WAIT = _SHORT_LIFETIME + 1.5
_DISPOSITION = 'attachment; filename="report.txt"'


class Fetched(NamedTuple):
    """What one HTTP request gave: status, response headers (lower-case names), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


#: A function fetching a URL with GET.
Fetch = Callable[[str], Fetched]


def http_fetch(url: str) -> Fetched:
    """Fetch ``url`` with GET; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            headers = {key.lower(): value for key, value in response.headers.items()}
            return Fetched(response.status, headers, response.read())
    except urllib.error.HTTPError as error:
        headers = {key.lower(): value for key, value in error.headers.items()}
        return Fetched(error.code, headers, error.read())


class SignedUrlContract:
    """Signed URLs grant access, stop granting it, and carry response overrides.

    Mixed into :class:`~stowage.testing.StorageContract`; uses its ``storage``
    fixture and the ``fetch_url`` fixture.
    """

    #: ``url(name, expire=…)`` signs (else it must refuse). None: the driver's SIGN.
    signs_urls: ClassVar[bool | None] = None
    #: The fetched server refuses a signed URL once it has expired.
    server_checks_expiry: ClassVar[bool] = True
    #: The fetched server applies response overrides (``response-content-disposition``).
    server_applies_response_overrides: ClassVar[bool] = True

    @pytest.fixture
    def fetch_url(self) -> Fetch | None:
        """Return a function fetching the storage's URLs, or None if nothing serves them."""
        return None

    def _signs(self, storage: Any) -> bool:
        if self.signs_urls is not None:
            return self.signs_urls
        from stowage.drivers.base import Capability
        from stowage.storage import Storage

        if not isinstance(storage, Storage):
            raise AssertionError(f"declare signs_urls for {type(storage).__name__}")
        return Capability.SIGN in storage.driver.capabilities

    def _refuses_signing(self, storage: Any, **kwargs: Any) -> str:
        from stowage.storage import Storage

        if isinstance(storage, Storage):
            from stowage.exceptions import UnsupportedOperation

            with pytest.raises(UnsupportedOperation, match="cannot sign URLs") as refused:
                storage.url("signed.txt", **kwargs)
            return refused.type.__name__
        # Django's own url() takes no keyword arguments at all.
        with pytest.raises((NotImplementedError, TypeError)) as other:
            storage.url("signed.txt", **kwargs)
        return other.type.__name__

    def _check_access_and_expiry(self, storage: Any, fetch_url: Fetch | None) -> str:
        long_lived = storage.url("signed.txt", expire=3600)
        short = storage.url("signed.txt", expire=_SHORT_LIFETIME)
        assert "?" in long_lived, long_lived
        assert "?" in short, short
        assert short != long_lived, "the lifetime is not part of the signed URL"
        if fetch_url is None:
            return "URL only: no fetch_url fixture"
        granted = fetch_url(long_lived)
        assert (granted.status, granted.body) == (200, b"signed body"), granted
        usual = storage.url("signed.txt")  # signed as configured, where that is the default
        if "?" in usual:
            granted = fetch_url(usual)
            assert (granted.status, granted.body) == (200, b"signed body"), (usual, granted)
        if not self.server_checks_expiry:
            assert fetch_url(short).status == 200
            return "access; the test server checks no expiry"
        time.sleep(_WAIT)
        expired = fetch_url(short)
        assert expired.status in (400, 401, 403), expired
        assert expired.body != b"signed body"
        assert fetch_url(long_lived).status == 200
        return "access, refused after expiry"

    def test_signed_url_grants_access_until_it_expires(
        self, storage: Any, fetch_url: Fetch | None
    ) -> None:
        """A signed URL serves the file, and stops once ``expire`` has passed."""
        behaviour = "signed URL grants access, then expires"
        storage.save("signed.txt", ContentFile(b"signed body"))
        if self._signs(storage):
            record(self, behaviour, CHECKED, self._check_access_and_expiry(storage, fetch_url))
        else:
            record(self, behaviour, REFUSED, self._refuses_signing(storage, expire=60))

    def _check_overrides(self, url: str, fetch_url: Fetch | None) -> str:
        assert _DISPOSITION in unquote(url), url
        if fetch_url is None:
            return "in the URL: no fetch_url fixture"
        fetched = fetch_url(url)
        assert (fetched.status, fetched.body) == (200, b"report"), fetched
        if not self.server_applies_response_overrides:
            return "in the URL; the test server ignores overrides"
        assert fetched.headers.get("content-disposition") == _DISPOSITION, fetched.headers
        return "header arrives"

    def test_signed_url_parameters_honoured_or_refused(
        self, storage: Any, fetch_url: Fetch | None
    ) -> None:
        """``parameters`` (response header overrides) reach the response, or are refused."""
        behaviour = "signed URL parameters (Content-Disposition)"
        storage.save("report.txt", ContentFile(b"report"))
        parameters = {"ResponseContentDisposition": _DISPOSITION}
        if not self._signs(storage):
            record(self, behaviour, REFUSED, self._refuses_signing(storage, parameters=parameters))
        else:
            from stowage.exceptions import UnsupportedOperation

            refused: UnsupportedOperation | None = None
            try:
                url = storage.url("report.txt", parameters=parameters)
            except UnsupportedOperation as exc:
                refused = exc
            if refused is not None:
                assert "override" in str(refused) or "parameters" in str(refused), refused
                record(self, behaviour, REFUSED, type(refused).__name__)
            else:
                record(self, behaviour, CHECKED, self._check_overrides(url, fetch_url))

    def _stored_types(self, storage: Any, names: list[str]) -> dict[str, str | None] | None:
        from stowage.storage import Storage

        if not isinstance(storage, Storage):
            return None
        return {name: storage.driver.head(storage.key(name)).content_type for name in names}

    def test_content_type_follows_the_name(self, storage: Any, fetch_url: Fetch | None) -> None:
        """The stored Content-Type is the one the name implies (where types are kept)."""
        behaviour = "Content-Type from the name"
        expected = {"page.html": "text/html", "doc.pdf": "application/pdf", "pic.png": "image/png"}
        for name, content_type in expected.items():
            assert mimetypes.guess_type(name)[0] == content_type
            storage.save(name, ContentFile(b"typed"))
        stored = self._stored_types(storage, list(expected))
        if stored is not None and None not in stored.values():
            # Parameters such as "; charset=utf-8" may follow the type.
            stored = {name: str(value).split(";")[0].strip() for name, value in stored.items()}
            assert stored == expected
            record(self, behaviour, CHECKED, "head()")
        elif fetch_url is not None:
            # A backend keeping no type keeps none at all, never a wrong one.
            assert stored is None or set(stored.values()) == {None}, stored
            served = {name: fetch_url(storage.url(name)) for name in expected}
            assert {name: got.status for name, got in served.items()} == dict.fromkeys(
                expected, 200
            )
            types = {
                name: got.headers.get("content-type", "").split(";")[0]
                for name, got in served.items()
            }
            assert types == expected, types
            record(self, behaviour, CHECKED, "served URL")
        else:
            assert stored is None or set(stored.values()) == {None}, stored
            record(self, behaviour, REFUSED, "no type kept, nothing serves the URLs")

    def test_urls_of_names_with_delimiters_serve_them(
        self, storage: Any, fetch_url: Fetch | None
    ) -> None:
        """``url()`` of a name holding URL delimiters or non-ASCII serves that very file."""
        from stowage.exceptions import UnsupportedOperation

        behaviour = "URLs of names with delimiters"
        names = [*DELIMITER_NAMES, "sp ace.txt", "ü é.txt"]
        saved = []
        for name in names:
            try:
                saved.append(storage.save(f"named/{name}", ContentFile(name.encode())))
            except SuspiciousFileOperation:
                continue  # refused by the backend; the storage contract checks how
        assert saved, "every name was refused"
        try:
            urls = {name: storage.url(name) for name in saved}
        except UnsupportedOperation as exc:
            record(self, behaviour, REFUSED, type(exc).__name__)
            return
        if fetch_url is None:
            record(self, behaviour, CHECKED, "URL only: no fetch_url fixture")
            return
        served = {name: fetch_url(url) for name, url in urls.items()}
        assert {name: (got.status, got.body) for name, got in served.items()} == {
            name: (200, name.removeprefix("named/").encode()) for name in saved
        }
        record(self, behaviour, CHECKED, f"{len(saved)} names served")
