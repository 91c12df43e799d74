"""The URL policy of stowage.urls, on drivers with and without signing."""

import datetime as dt
from urllib.parse import urljoin

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils.encoding import filepath_to_uri

from stowage import MemoryStorage, Storage
from stowage.exceptions import UnsupportedOperation

SIGNING = "tests.unit.recording:SigningDriver"
DOMAIN_SIGNING = "tests.unit.recording:DomainSigningDriver"
PUBLIC = "tests.unit.recording:PublicDriver"


def test_drivers_without_urls_use_media_url() -> None:
    with override_settings(MEDIA_URL="/files/"):
        assert MemoryStorage().url("a b.txt") == "/files/a%20b.txt"
    assert MemoryStorage(base_url="https://cdn.test/m/").url("x") == "https://cdn.test/m/x"


def test_base_url_quoting_matches_django() -> None:
    storage = MemoryStorage(base_url="/m/")
    assert storage.url("ab\0c") == "/m/ab%00c"
    assert storage.url(r"~!*()'@#$%^&*abc`+ =.file") == (
        "/m/~!*()'%40%23%24%25%5E%26*abc%60%2B%20%3D.file"
    )
    assert storage.url(None) == "/m/"


@pytest.mark.parametrize(
    "base",
    [
        "/static/",
        "/media",
        "",
        "static/",
        "https://cdn.test/m/",
        "//cdn.test/s/",
        "https://cdn.test",
        "https://cdn.test/a/./b/",
        "/s//x/",
        "/static/?v=1",
        "/static/#top/",
    ],
)
def test_base_url_joins_as_urljoin_does(base: str) -> None:
    # url() appends a plain path to a plain base itself: the same URL as Django's urljoin.
    # base_url must end in "/"; MEDIA_URL, the base otherwise, is not checked here.
    storage = MemoryStorage(base_url=base) if base.endswith("/") else MemoryStorage()
    with override_settings(MEDIA_URL=base):
        # Django prefixes a relative MEDIA_URL with the script prefix ("" becomes "/").
        _assert_joined_as_urljoin(storage, base if storage.options.base_url else settings.MEDIA_URL)


def _assert_joined_as_urljoin(storage: Storage, base: str) -> None:
    for name in [
        "a.css",
        "app/img/b c.png",
        "a//b",
        "./a",
        "a/./b",
        "a/.",
        "dir/",
        "",
        "/rooted/x",
        "ü n?i#c:o;de@.css",
        "a/.hidden/...b",
    ]:
        relative = name.lstrip("/")
        assert storage.url(name) == urljoin(base, filepath_to_uri(relative)), (base, name)


def test_signed_by_default_with_expiry_and_parameters() -> None:
    storage = Storage(driver=SIGNING, location="media")
    assert storage.url("a.txt") == "https://service.test/media/a.txt?method=GET&expires=3600"
    assert storage.url("a.txt", expire=60, method="put") == (
        "https://service.test/media/a.txt?method=PUT&expires=60"
    )
    url = storage.url(
        "a.txt",
        expire=dt.timedelta(minutes=2),
        parameters={"ResponseContentDisposition": "attachment"},
    )
    assert url.endswith("expires=120&ResponseContentDisposition=attachment")


def test_signed_urls_refuse_unsafe_names() -> None:
    from django.core.exceptions import SuspiciousFileOperation

    with pytest.raises(SuspiciousFileOperation):
        Storage(driver=SIGNING).url("../x")


def test_querystring_auth_off_gives_public_urls() -> None:
    storage = Storage(driver=PUBLIC, querystring_auth=False)
    assert storage.url("a b") == "https://public.test/a b"


def test_custom_domain_is_unsigned_unless_the_driver_signs_there() -> None:
    storage = Storage(driver=SIGNING, custom_domain="cdn.test", location="m")
    assert storage.url("a b.txt") == "https://cdn.test/m/a%20b.txt"
    assert storage.url("a.txt", method="PUT").startswith("https://service.test/m/a.txt?")
    signing = Storage(driver=DOMAIN_SIGNING, custom_domain="cdn.test", url_protocol="http:")
    assert signing.url("a.txt") == "http://cdn.test/a.txt?method=GET&expires=3600"


def test_temporary_urls_are_refused_where_nothing_can_sign() -> None:
    storage = MemoryStorage()
    for kwargs in ({"expire": 10}, {"method": "PUT"}, {"parameters": {"a": "b"}}):
        with pytest.raises(UnsupportedOperation, match="cannot sign"):
            storage.url("a", **kwargs)  # type: ignore[arg-type]


def test_custom_domain_with_its_own_scheme_and_the_base_with_a_location() -> None:
    storage = Storage(driver=SIGNING, custom_domain="http://cdn.test/", location="m")
    assert storage.url("a.txt") == "http://cdn.test/m/a.txt"
    unsigned = Storage(driver=PUBLIC, custom_domain="http://cdn.test", querystring_auth=False)
    assert unsigned.url("a b") == "http://cdn.test/a%20b"
    located = Storage(driver=PUBLIC, querystring_auth=False, location="pub")
    assert located.url(None) == "https://public.test/pub/"


def test_querystring_expire_accepts_a_timedelta() -> None:
    storage = Storage(driver=SIGNING, querystring_expire=dt.timedelta(minutes=10))
    assert storage.url("a").endswith("expires=600")
