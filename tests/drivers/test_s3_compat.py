"""The S3 driver on a server that ignores ``If-None-Match: *`` (s3rver), beside moto.

s3rver stands for the S3-compatible services on which a conditional PUT
silently overwrites. The whole kit runs on it in the default
``conditional_writes="auto"`` mode; the tests below pin down the probe, its
cache, the best-effort fallback (small and multipart bodies, sync and async),
the ``require`` and ``off`` modes, the W005 system check and what
``manage.py stowage check`` reports.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import obstore
import pytest
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import override_settings

from stowage import S3Storage
from stowage.drivers.base import Capability
from stowage.drivers.s3 import S3Driver, S3Options, conditional
from stowage.exceptions import ConfigurationError
from stowage.testing import (
    AsyncStorageContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
)
from stowage.testing.url_contract import Fetch, http_fetch
from tests.servers._process import free_port
from tests.servers.moto import MotoServer
from tests.servers.s3rver import SECRET_KEY, S3rver

_MiB = 1024 * 1024


@pytest.fixture
def options(s3rver: S3rver, s3rver_bucket: str) -> dict[str, Any]:
    # s3rver's delimited listings miss directories nested below the prefix
    # (test_s3rver_misses_nested_directories_in_delimited_listings): exists() asks HEAD.
    return {**s3rver.options(s3rver_bucket), "exists_by_listing": False}


@pytest.fixture
def moto_options(s3_server: MotoServer, s3_bucket: str) -> dict[str, Any]:
    return s3_server.options(s3_bucket)


@pytest.fixture(params=["s3rver", "moto"])
def any_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options of a fresh bucket on each server in turn."""
    fixture = "options" if request.param == "s3rver" else "moto_options"
    found: dict[str, Any] = request.getfixturevalue(fixture)
    return found


def _stored_keys(storage: S3Storage) -> list[str]:
    """Return every key in the bucket, the hidden staging prefix included."""
    return sorted(meta["path"] for page in obstore.list(storage.driver.store) for meta in page)


def _read(storage: S3Storage, name: str) -> bytes:
    with storage.open(name, "rb") as handle:
        data: bytes = handle.read()
    return data


# -- the kit on s3rver ---------------------------------------------------------------------


class TestS3rverDriver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> S3Driver:
        return S3Driver(S3Options(**options, multipart_threshold=5 * _MiB))


def test_s3rver_misses_nested_directories_in_delimited_listings(options: dict[str, Any]) -> None:
    """Why the s3rver tests turn ``exists_by_listing`` off (moto and the services list right)."""
    driver = S3Driver(S3Options(**{**options, "exists_by_listing": True}))
    driver.put("x/y/z.txt", io.BytesIO(b"z"), size=1)
    assert driver.exists("x/y")  # one level below the prefix: listed
    assert not driver.exists("x")  # two levels below: s3rver leaves out the prefix "x/"
    assert S3Driver(S3Options(**options)).exists("x")


class S3rverDriver(S3Driver):
    """S3 on s3rver, which keeps each object as a file: a key part over 255 bytes
    cannot be stored there (it answers 500), as on the file systems it stands for."""

    max_part_bytes = 255


class TestS3rverStorage(StorageContract, AsyncStorageContract, HostileNamesContract):
    secret_values = (SECRET_KEY,)
    hostile_examples = 60
    # Best effort: racers that pass the last check together overwrite one another.
    race_survivors_at_least = 1
    async_race_survivors_at_least = 1

    @pytest.fixture
    def storage(self, options: dict[str, Any], s3rver: S3rver) -> S3Storage:
        # s3rver removes a directory a delete leaves empty, racing a write that
        # is creating a file in it (its own bug, see tests/servers/s3rver_guard.cjs):
        # a lasting object keeps the staging directory of the kit's races in place.
        s3rver.boto3().put_object(
            Bucket=options["bucket_name"], Key=".stowage-uploads/.keep", Body=b""
        )
        return S3Storage(driver=f"{__name__}:S3rverDriver", location="media", **options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch

    @pytest.fixture
    def broken_storage(self, options: dict[str, Any]) -> S3Storage:
        closed = f"http://127.0.0.1:{free_port()}"
        return S3Storage(location="media", **{**options, "endpoint_url": closed, "max_retries": 0})


# -- auto: the probe and the fallback --------------------------------------------------


def test_sequential_saves_of_one_name_keep_every_file(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    bodies = [f"body {i}".encode() for i in range(20)]
    names = [storage.save("same.txt", ContentFile(body)) for body in bodies]
    assert len(set(names)) == 20
    assert names[0] == "same.txt"
    assert [_read(storage, name) for name in names] == bodies
    assert _stored_keys(storage) == sorted(names)
    assert Capability.ATOMIC_CREATE not in storage.driver.capabilities


def test_large_saves_of_one_name_keep_both(options: dict[str, Any]) -> None:
    storage = S3Storage(multipart_threshold=5 * _MiB, **options)
    first, second = b"1" * (6 * _MiB), b"2" * (6 * _MiB + 1)
    names = [storage.save("big.bin", ContentFile(body)) for body in (first, second)]
    assert names[0] == "big.bin"
    assert names[1] != "big.bin"
    assert _read(storage, names[0]) == first
    assert _read(storage, names[1]) == second
    assert storage.driver.head(names[1]).content_type == "application/octet-stream"
    assert _stored_keys(storage) == sorted(names)


def test_a_large_create_of_a_taken_key_is_refused_by_the_driver(options: dict[str, Any]) -> None:
    # The driver's own last check, without the adapter's exists() in front of it.
    driver = S3Driver(S3Options(**options, multipart_threshold=5 * _MiB))
    driver.put("k.bin", io.BytesIO(b"small"), size=5, if_absent=True)
    for size in (5, 6 * _MiB):
        with pytest.raises(FileExistsError):
            driver.put("k.bin", io.BytesIO(b"x" * size), size=size, if_absent=True)
    assert driver.head("k.bin").size == 5
    assert [m["path"] for page in obstore.list(driver.store) for m in page] == ["k.bin"]


def test_large_creates_stay_staged_where_the_header_is_ignored(options: dict[str, Any]) -> None:
    driver = S3Driver(S3Options(**options, multipart_threshold=5 * _MiB))
    assert driver.creates_directly() is False
    start = driver.multipart.create

    def staged_only(key: str, headers: dict[str, str]) -> str:
        # A multipart upload may fill the staged object (its parts' CRC32s), never the name.
        assert key.startswith(".stowage-uploads/"), key
        return start(key, headers)

    refuse = mock.patch.object(driver.multipart, "create", side_effect=staged_only)
    data = b"s" * (6 * _MiB)
    with refuse:
        driver.put("staged.bin", io.BytesIO(data), size=len(data), if_absent=True)
        driver.put("unsized.bin", io.BytesIO(data), size=None, if_absent=True)
    assert b"".join(driver.get("staged.bin")) == data
    assert [m["path"] for page in obstore.list(driver.store) for m in page] == [
        "staged.bin",
        "unsized.bin",
    ]


def test_async_saves_fall_back_too(options: dict[str, Any]) -> None:
    storage = S3Storage(multipart_threshold=5 * _MiB, **options)
    small, large = b"small", b"L" * (6 * _MiB)

    async def scenario() -> list[str]:
        return [
            await storage.asave("a.txt", ContentFile(small)),
            await storage.asave("a.txt", ContentFile(small + b"!")),
            await storage.asave("b.bin", ContentFile(large)),
            await storage.asave("b.bin", ContentFile(large + b"!")),
        ]

    names = asyncio.run(scenario())
    assert len(set(names)) == 4
    assert [_read(storage, n) for n in names] == [small, small + b"!", large, large + b"!"]


def test_async_driver_put_refuses_a_taken_key(options: dict[str, Any]) -> None:
    driver = S3Driver(S3Options(**options))

    async def scenario() -> None:
        await driver.aput("k.txt", io.BytesIO(b"one"), size=3, if_absent=True)
        with pytest.raises(FileExistsError):
            await driver.aput("k.txt", io.BytesIO(b"two"), size=3, if_absent=True)

    asyncio.run(scenario())
    assert b"".join(driver.get("k.txt")) == b"one"


def test_the_fallback_warns_once(
    options: dict[str, Any], s3rver: S3rver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stowage.s3"):
        for _ in range(3):
            S3Storage(**options).save("w.txt", ContentFile(b"w"))
    warnings = [r for r in caplog.records if r.name == "stowage.s3"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert s3rver.endpoint in message
    assert options["bucket_name"] in message
    assert "conditional_writes" in message


def test_the_probe_leaves_nothing_behind(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    assert storage.driver.probe_conditional_writes() is False
    assert _stored_keys(storage) == []


def test_moto_honours_conditional_writes(moto_options: dict[str, Any]) -> None:
    storage = S3Storage(**moto_options)
    assert Capability.ATOMIC_CREATE in storage.driver.capabilities
    assert storage.driver.conditional_writes_honoured() is True
    assert _stored_keys(storage) == []


def test_the_probe_runs_once_per_bucket(options: dict[str, Any], s3rver: S3rver) -> None:
    probe = S3Driver._probe
    with mock.patch.object(S3Driver, "_probe", autospec=True, side_effect=probe) as spy:
        # Eight storages on one bucket save at once: one probe between them.
        barrier = threading.Barrier(8)

        def save(index: int) -> str:
            storage = S3Storage(**options)
            barrier.wait()
            name: str = storage.save(f"f{index}.txt", ContentFile(b"x"))
            return name

        with ThreadPoolExecutor(8) as pool:
            saved = list(pool.map(save, range(8)))
        assert len(set(saved)) == 8
        assert spy.call_count == 1
        S3Storage(**options).save("later.txt", ContentFile(b"y"))
        assert spy.call_count == 1
        # Another bucket is another answer.
        S3Storage(**s3rver.options(s3rver.create_bucket())).save("z.txt", ContentFile(b"z"))
        assert spy.call_count == 2
    assert conditional.CONDITIONAL_WRITES[(s3rver.endpoint, options["bucket_name"])] is False


def test_urls_and_system_checks_do_not_probe(options: dict[str, Any]) -> None:
    storage = S3Storage(**options)
    with mock.patch.object(S3Driver, "_probe", autospec=True) as spy:
        assert "X-Amz-Signature=" in storage.url("u.txt")
        assert Capability.SIGN in storage.driver.capabilities
        default = {"BACKEND": "stowage.S3Storage", "OPTIONS": options}
        with override_settings(STORAGES={"default": default}):
            assert [m for m in run_checks() if str(m.id).startswith("stowage.")] == []
    assert spy.call_count == 0
    assert storage.driver.conditional_writes_honoured() is None


# -- require and off ---------------------------------------------------------------------


def test_require_refuses_a_server_that_ignores_the_header(options: dict[str, Any]) -> None:
    storage = S3Storage(conditional_writes="require", **options)
    with pytest.raises(ConfigurationError, match="conditional_writes") as refused:
        storage.save("r.txt", ContentFile(b"r"))
    assert "If-None-Match" in str(refused.value)
    assert _stored_keys(storage) == []

    async def scenario() -> None:
        await storage.asave("r.txt", ContentFile(b"r"))

    with pytest.raises(ConfigurationError, match="conditional_writes"):
        asyncio.run(scenario())


def test_require_works_where_the_header_is_honoured(moto_options: dict[str, Any]) -> None:
    storage = S3Storage(conditional_writes="require", **moto_options)
    assert Capability.ATOMIC_CREATE in storage.driver.capabilities
    names = [storage.save("q.txt", ContentFile(f"{i}".encode())) for i in range(3)]
    assert len(set(names)) == 3
    assert [_read(storage, n) for n in names] == [b"0", b"1", b"2"]


def test_off_is_best_effort_on_both_servers(any_options: dict[str, Any]) -> None:
    storage = S3Storage(conditional_writes="off", multipart_threshold=5 * _MiB, **any_options)
    assert Capability.ATOMIC_CREATE not in storage.driver.capabilities
    bodies = [b"one", b"two", b"3" * (6 * _MiB), b"4" * (6 * _MiB)]
    names = [storage.save("o.bin", ContentFile(body)) for body in bodies]
    assert len(set(names)) == 4
    assert [_read(storage, n) for n in names] == bodies
    assert _stored_keys(storage) == sorted(names)
    # No probe: "off" never sends If-None-Match.
    assert storage.driver.conditional_writes_honoured() is None


def test_bad_mode_names_the_option(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="conditional_writes"):
        S3Storage(conditional_writes="sometimes", **options)


# -- W005 and manage.py stowage check ------------------------------------------------------


def _w005(**storages: dict[str, Any]) -> list[str]:
    every = {"default": {"BACKEND": "stowage.LocalStorage"}, **storages}
    with override_settings(STORAGES=every):
        return [str(m.obj) for m in run_checks() if m.id == "stowage.W005"]


def test_w005_reports_storages_without_atomic_create(
    options: dict[str, Any], moto_options: dict[str, Any]
) -> None:
    ignored = {"BACKEND": "stowage.S3Storage", "OPTIONS": options}
    honoured = {"BACKEND": "stowage.S3Storage", "OPTIONS": moto_options}
    off = {"BACKEND": "stowage.S3Storage", "OPTIONS": {**moto_options, "conditional_writes": "off"}}
    # Nothing is known before a save: no warning, and no request.
    assert _w005(ignored=ignored, honoured=honoured, off=off) == ["STORAGES['off']"]
    S3Storage(**options).save("x.txt", ContentFile(b"x"))
    S3Storage(**moto_options).save("x.txt", ContentFile(b"x"))
    assert _w005(ignored=ignored, honoured=honoured, off=off) == [
        "STORAGES['ignored']",
        "STORAGES['off']",
    ]


@pytest.fixture
def configure() -> Iterator[Any]:
    active: list[override_settings] = []

    def apply(**aliases: dict[str, Any]) -> None:
        override = override_settings(STORAGES=aliases)
        override.enable()
        active.append(override)

    yield apply
    for override in reversed(active):
        override.disable()


def test_stowage_check_reports_the_create_mode(
    configure: Any, options: dict[str, Any], moto_options: dict[str, Any]
) -> None:
    configure(
        ignored={"BACKEND": "stowage.S3Storage", "OPTIONS": options},
        honoured={"BACKEND": "stowage.S3Storage", "OPTIONS": moto_options},
        off={"BACKEND": "stowage.S3Storage", "OPTIONS": {**options, "conditional_writes": "off"}},
        required={
            "BACKEND": "stowage.S3Storage",
            "OPTIONS": {**options, "conditional_writes": "require"},
        },
    )
    out = io.StringIO()
    with pytest.raises(Exception, match="1 of 4 storages failed the check: required"):
        call_command("stowage", "check", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    parts: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            alias = line.split(" ", 1)[0]
        parts[alias] = parts.get(alias, "") + line + "\n"
    assert "(creates: best effort, the server ignores If-None-Match: *)" in parts["ignored"]
    assert "(creates: atomic, the server honours If-None-Match: *)" in parts["honoured"]
    assert "(creates: best effort, conditional_writes='off')" in parts["off"]
    assert "diagnosis: conditional writes ignored" in parts["required"]


def test_a_failed_probe_is_clear_and_not_cached(options: dict[str, Any]) -> None:
    refused = {**options, "endpoint_url": f"http://127.0.0.1:{free_port()}", "max_retries": 0}
    storage = S3Storage(**refused)
    for _ in range(2):
        with pytest.raises(ConnectionError, match="conditional_writes='off'"):
            storage.save("p.txt", ContentFile(b"p"))
    assert storage.driver.conditional_writes_honoured() is None
