"""Options: settings fallbacks, aliases, environment, secrets."""

import pytest
from django.test import override_settings

from stowage import Storage
from stowage.config import StorageOptions, build_options
from stowage.exceptions import ConfigurationError

SECRET = "tests.unit.recording:SecretDriver"


def test_options_come_from_options_first_then_settings_then_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOWAGE_TEST_REGION", "from-env")
    with override_settings(TEST_PASSWORD="from-settings", TEST_EXPIRE=60):
        storage = Storage(driver=SECRET)
        assert storage.driver_options.password == "from-settings"  # type: ignore[attr-defined]
        assert storage.driver_options.region == "from-env"  # type: ignore[attr-defined]
        assert storage.options.querystring_expire == 60
        explicit = Storage(driver=SECRET, password="given", region="given")
        assert explicit.driver_options.password == "given"  # type: ignore[attr-defined]
        assert explicit.driver_options.region == "given"  # type: ignore[attr-defined]


def test_settings_fallbacks_are_type_checked() -> None:
    with (
        override_settings(TEST_EXPIRE="soon"),
        pytest.raises(ConfigurationError, match="'querystring_expire' must be int"),
    ):
        Storage(driver=SECRET)


def test_aliases_rename_and_conflicts_are_refused() -> None:
    storage = Storage(driver=SECRET, user="me", expiration=30)
    assert storage.driver_options.username == "me"  # type: ignore[attr-defined]
    assert storage.options.querystring_expire == 30
    with pytest.raises(ConfigurationError, match="mean the same"):
        Storage(driver=SECRET, user="me", username="me")


def test_secrets_never_show() -> None:
    storage = Storage(driver=SECRET, username="visible", password="hunter2-very-secret")
    shown = repr(storage) + str(storage) + repr(storage.deconstruct())
    shown += repr(storage.driver_options)
    assert "hunter2-very-secret" not in shown
    _path, _args, kwargs = storage.deconstruct()
    assert kwargs == {"driver": SECRET, "username": "visible"}


def test_build_options_rejects_unknown_keys_with_the_valid_list() -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown storage option 'colour'.*base_url"):
        build_options(StorageOptions, {"colour": "red"})


def test_optional_and_union_types() -> None:
    assert build_options(StorageOptions, {"base_url": None}).base_url is None
    with pytest.raises(ConfigurationError, match=r"'custom_domain' must be str \| None"):
        build_options(StorageOptions, {"custom_domain": 3})
