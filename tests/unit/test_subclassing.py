"""A project's subclass of a storage: class attributes and Django's hooks."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import override_settings

import stowage
from stowage import secrecy as storage_module
from stowage.drivers.base import Capability
from stowage.exceptions import UnsupportedOperation
from stowage.subclassing import unknown_class_attributes


class _Media(stowage.MemoryStorage):
    location = "media"
    file_overwrite = True


def test_class_attributes_are_options() -> None:
    storage = _Media()
    assert storage.options.location == "media"
    assert storage.location == "media"
    assert storage.file_overwrite is True
    assert storage.save("a.txt", ContentFile(b"1")) == "a.txt"
    assert storage.save("a.txt", ContentFile(b"2")) == "a.txt"
    assert [info.key for info in storage.driver.list("", recursive=True)] == ["media/a.txt"]


def test_keywords_win_over_class_attributes_and_the_attribute_shows_the_winner() -> None:
    storage = _Media(location="other")
    assert storage.options.location == "other"
    assert storage.location == "other"


def test_class_attributes_win_over_global_settings() -> None:
    class S3Media(stowage.S3Storage):
        location = "from-class"
        bucket_name = "b"

    with override_settings(AWS_LOCATION="from-setting", AWS_STORAGE_BUCKET_NAME="s"):
        storage = S3Media(access_key="k", secret_key="s")
        plain = stowage.S3Storage(access_key="k", secret_key="s")
    assert storage.options.location == "from-class"
    assert storage.driver_options.bucket_name == "b"
    assert plain.options.location == "from-setting"


def test_class_attribute_under_a_django_storages_alias() -> None:
    class S3Media(stowage.S3Storage):
        bucket_name = "b"
        security_token = "token"

    assert S3Media().driver_options.session_token == "token"


def test_bad_class_attribute_value_names_the_option() -> None:
    class Broken(stowage.MemoryStorage):
        file_overwrite = "yes"

    with pytest.raises(ImproperlyConfigured, match="'file_overwrite'"):
        Broken()


def test_unknown_class_attributes_are_found() -> None:
    class Typo(stowage.S3Storage):
        bukcet_name = "b"
        location = "media"
        driver_name = "s3"

        def helper(self) -> None:
            """A method is an override, not configuration."""

    classes = (stowage.S3Storage().driver_options.__class__, stowage.config.StorageOptions)
    assert unknown_class_attributes(Typo, classes, {}) == ["bukcet_name"]


class _Keyed(stowage.S3Storage):
    bucket_name = "b"
    access_key = "AKIDCLASS"
    secret_key = "class-secret-value"


def test_secret_class_attribute_survives_pickling_without_riding_in_the_pickle() -> None:
    storage = _Keyed()
    assert "secret_key" not in vars(storage)
    data = pickle.dumps(storage)
    assert b"class-secret-value" not in data
    # As in another process: the secrets this one held are not there.
    storage_module._PICKLED_SECRETS.clear()
    restored = pickle.loads(data)
    assert restored.driver_options.secret_key == "class-secret-value"


def test_get_object_parameters_is_refused_where_the_backend_has_none() -> None:
    class PerFile(stowage.MemoryStorage):
        def get_object_parameters(self, name: str) -> dict[str, Any]:
            return {"CacheControl": "max-age=60"}

    storage = PerFile()
    with pytest.raises(UnsupportedOperation, match="per-file upload parameters"):
        storage.save("a.txt", ContentFile(b"a"))
    assert not storage.exists("a.txt")


def test_overwrite_recipe_on_async_save() -> None:
    class Overwrite(stowage.MemoryStorage):
        def get_available_name(self, name: str, max_length: int | None = None) -> str:
            self.delete(name)
            return name

    storage = Overwrite()
    storage.save("a.txt", ContentFile(b"1"))
    assert asyncio.run(storage.asave("a.txt", ContentFile(b"2"))) == "a.txt"
    assert storage.open("a.txt").read() == b"2"


def test_hooks_path_never_replaces_a_file_taken_in_the_meantime() -> None:
    """get_available_name says free, the name is taken before _save: the save moves on."""

    class Racy(stowage.MemoryStorage):
        def get_available_name(self, name: str, max_length: int | None = None) -> str:
            chosen = super().get_available_name(name, max_length)
            if not getattr(self, "raced", False):
                self.raced = True
                stowage.MemoryStorage.save(self, chosen, ContentFile(b"other process"))
            return chosen

    storage = Racy()
    assert Capability.ATOMIC_CREATE in storage.driver.capabilities
    name = storage.save("a.txt", ContentFile(b"mine"))
    assert name != "a.txt"
    assert storage.open("a.txt").read() == b"other process"
    assert storage.open(name).read() == b"mine"


def test_library_subclasses_keep_the_atomic_path() -> None:
    assert not stowage.MemoryStorage().owns_name_choice()
    assert not stowage.StaticStorage(driver="memory").owns_name_choice()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.css.gz", "application/gzip"),
        ("backup.tar.gz", "application/gzip"),
        ("a.txt.br", "application/x-brotli"),
        ("a.bz2", "application/x-bzip2"),
        ("a.txt.xz", "application/x-xz"),
        ("a.zst", "application/zstd"),
        ("a.css", "text/css"),
    ],
)
def test_compressed_names_are_stored_as_archives(name: str, content_type: str) -> None:
    storage = stowage.MemoryStorage()
    stored = storage.save(name, ContentFile(b"\x1f\x8b data"))
    assert storage.driver.head(stored).content_type == content_type


class TypoStorage(stowage.MemoryStorage):
    """A project's storage with a misspelt option."""

    locaton = "media"


def test_system_check_reports_a_class_attribute_that_configures_nothing() -> None:
    from stowage.checks import check_class_attributes

    backend = f"{__name__}.TypoStorage"
    with override_settings(STORAGES={"default": {"BACKEND": backend}}):
        messages = check_class_attributes()
    assert [m.id for m in messages] == ["stowage.W007"]
    assert "TypoStorage.locaton" in messages[0].msg
    with override_settings(STORAGES={"default": {"BACKEND": "stowage.MemoryStorage"}}):
        assert check_class_attributes() == []


class TransferStorage(stowage.S3Storage):
    """A django-storages option stowage refuses, as a class attribute."""

    bucket_name = "b"
    transfer_config = object()


def test_system_check_says_what_to_use_for_a_refused_class_attribute() -> None:
    from stowage.checks import check_class_attributes

    backend = f"{__name__}.TransferStorage"
    with override_settings(STORAGES={"default": {"BACKEND": backend}}):
        (message,) = check_class_attributes()
    assert "TransferStorage.transfer_config" in message.msg
    assert "multipart" in message.hint


def test_an_option_named_like_a_method_is_refused_as_a_class_attribute() -> None:
    class Dav(stowage.WebDAVStorage):
        url = "https://dav.example.com/files/"

    with pytest.raises(ImproperlyConfigured, match=r"Dav.url hides the storage's method url\(\)"):
        Dav()


def test_options_named_like_methods_leave_the_methods_alone() -> None:
    storage = stowage.WebDAVStorage(url="https://dav.example.com/files/")
    assert callable(storage.url)
    assert storage.driver_options.url == "https://dav.example.com/files/"


def test_options_read_as_attributes_follow_the_options_and_keep_secrets_out_of_vars() -> None:
    storage = _Keyed(bucket_name="other")
    assert (storage.bucket_name, storage.secret_key) == ("other", "class-secret-value")
    assert storage.querystring_auth is True
    storage.options = dataclasses.replace(storage.options, querystring_auth=False)
    assert storage.querystring_auth is False
    given = stowage.S3Storage(secret_key="given-secret")
    assert given.secret_key == "given-secret"
    assert "secret_key" not in vars(given)
    with pytest.raises(AttributeError, match="no attribute 'secret_key'"):
        _ = stowage.MemoryStorage().secret_key
    with pytest.raises(AttributeError, match="no attribute 'bukcet_name'"):
        _ = storage.bukcet_name
