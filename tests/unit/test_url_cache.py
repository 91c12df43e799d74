"""The opt-in cache of signed URLs in stowage.urls, on a driver that counts its signatures.

The clock is injected, so expiry is tested without waiting.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation

from stowage import Storage
from stowage.urls import SignedUrlCache, UrlPolicy, storage_url
from tests.unit.recording import SigningDriver

COUNTING = "tests.unit.test_url_cache:CountingSigner"


class CountingSigner(SigningDriver):
    """Sign as SigningDriver does, numbering each signature so every URL is new."""

    def sign(
        self,
        key: str,
        *,
        method: str = "GET",
        expires: dt.timedelta,
        parameters: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> str:
        with _LOCK:
            self.signed = getattr(self, "signed", 0) + 1
            serial = self.signed
        url = super().sign(
            key, method=method, expires=expires, parameters=parameters, domain=domain
        )
        return f"{url}&n={serial}"


_LOCK = threading.Lock()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _signed(storage: Storage) -> int:
    return int(getattr(storage.driver, "signed", 0))


def _cached(size: int = 8, **options: object) -> tuple[Storage, UrlPolicy, Clock]:
    storage = Storage(driver=COUNTING, url_cache_size=size, **options)
    clock = Clock()
    return storage, UrlPolicy(storage, clock=clock), clock


def test_off_by_default() -> None:
    storage = Storage(driver=COUNTING)
    assert storage.options.url_cache_size == 0
    first, second = storage.url("a.txt"), storage.url("a.txt")
    assert first != second
    assert _signed(storage) == 2
    assert UrlPolicy(storage).cache is None


def test_a_hit_returns_the_same_url_without_signing() -> None:
    storage = Storage(driver=COUNTING, url_cache_size=8, location="media")
    first = storage.url("a.txt")
    assert first.startswith("https://service.test/media/a.txt?method=GET&expires=3600")
    assert storage.url("a.txt") == first
    assert storage.url("/a.txt") == first  # the same name, as url() reads it
    assert _signed(storage) == 1


def test_a_url_is_reused_until_half_its_lifetime_is_gone() -> None:
    storage, policy, clock = _cached()
    first = storage_url(storage, policy, "a.txt")
    clock.now += 1800  # exactly half of 3600 s left: still served
    assert storage_url(storage, policy, "a.txt") == first
    clock.now += 0.001
    second = storage_url(storage, policy, "a.txt")
    assert second != first
    assert _signed(storage) == 2
    clock.now += 1800  # the new URL counts from its own signing
    assert storage_url(storage, policy, "a.txt") == second
    short = storage_url(storage, policy, "a.txt", expire=10)
    clock.now += 5
    assert storage_url(storage, policy, "a.txt", expire=10) == short
    clock.now += 1
    assert storage_url(storage, policy, "a.txt", expire=10) != short


def test_the_least_recently_used_url_goes_first() -> None:
    storage, policy, _ = _cached(size=2)
    a = storage_url(storage, policy, "a")
    b = storage_url(storage, policy, "b")
    assert storage_url(storage, policy, "a") == a  # a is now the most recent
    storage_url(storage, policy, "c")  # evicts b
    assert policy.cache is not None
    assert len(policy.cache) == 2
    assert storage_url(storage, policy, "a") == a
    assert storage_url(storage, policy, "b") != b
    assert _signed(storage) == 4


def test_each_request_kind_is_its_own_entry() -> None:
    storage, policy, _ = _cached()
    disposition = {"ResponseContentDisposition": "attachment"}
    urls = {
        storage_url(storage, policy, "a"),
        storage_url(storage, policy, "a", method="PUT"),
        storage_url(storage, policy, "a", expire=60),
        storage_url(storage, policy, "a", expire=dt.timedelta(minutes=2)),
        storage_url(storage, policy, "a", parameters=disposition),
        storage_url(storage, policy, "a", parameters={"ResponseContentType": "text/plain"}),
        storage_url(storage, policy, "b"),
    }
    assert len(urls) == 7
    assert _signed(storage) == 7
    # The same request again, however it is spelled, is a hit.
    assert storage_url(storage, policy, "a", expire=dt.timedelta(seconds=60)) in urls
    assert storage_url(storage, policy, "a", method="put") in urls
    both = {"ResponseContentType": "text/plain", "ResponseContentDisposition": "inline"}
    first = storage_url(storage, policy, "a", parameters=both)
    assert storage_url(storage, policy, "a", parameters=dict(reversed(both.items()))) == first
    assert _signed(storage) == 8


def test_refusals_are_never_cached() -> None:
    storage, policy, _ = _cached()
    for _ in range(2):
        with pytest.raises(SuspiciousFileOperation):
            storage_url(storage, policy, "../x")
    assert policy.cache is not None
    assert len(policy.cache) == 0


def test_unsigned_urls_do_not_use_the_cache() -> None:
    storage, policy, _ = _cached(querystring_auth=False, custom_domain="cdn.test")
    assert storage_url(storage, policy, "a b") == "https://cdn.test/a%20b"
    assert policy.cache is not None
    assert len(policy.cache) == 0
    assert _signed(storage) == 0


def test_threads_share_one_bounded_cache() -> None:
    storage = Storage(driver=COUNTING, url_cache_size=5)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(200):
                url = storage.url(f"f{(i + offset) % 10}")
                assert url.startswith(f"https://service.test/f{(i + offset) % 10}?")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    policy = storage._url_policy
    assert policy is not None
    assert policy.cache is not None
    assert len(policy.cache) <= 5


def test_the_cache_alone() -> None:
    clock = Clock()
    cache = SignedUrlCache(2, clock)
    assert cache.get("k", clock()) is None
    cache.put("k", "u", clock() + 10)
    assert cache.get("k", clock() + 10) == "u"
    assert cache.get("k", clock() + 10.5) is None
    assert len(cache) == 0  # a stale entry is dropped when found


@pytest.mark.parametrize(("value", "message"), [(-1, "0 .no cache. or more"), (True, "int")])
def test_bad_sizes_name_the_option(value: object, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"'url_cache_size'.*{message}"):
        Storage(driver=COUNTING, url_cache_size=value)
