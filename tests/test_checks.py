"""stowage's system checks: each one firing and not firing, and in `manage.py check`."""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.checks import CheckMessage, run_checks
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from stowage import S3Storage, checks
from stowage.apps import StowageConfig
from stowage.drivers.base import DriverOptions
from stowage.drivers.memory import MemoryDriver
from stowage.exceptions import MissingDependency

#: Options of an S3 storage that never needs its service: checks make no request.
S3 = {
    "bucket_name": "media",
    "endpoint_url": "http://127.0.0.1:9",
    "access_key": "checks-access",
    "secret_key": "checks-secret",
}
LOCAL = {"BACKEND": "stowage.LocalStorage"}
DJANGO_STATIC = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


def entry(backend: str, **options: Any) -> dict[str, Any]:
    """Return one STORAGES entry."""
    return {"BACKEND": f"stowage.{backend}", "OPTIONS": options}


def messages(
    default: dict[str, Any] = LOCAL, staticfiles: dict[str, Any] = DJANGO_STATIC, **more: Any
) -> list[CheckMessage]:
    """Run every system check with these STORAGES; return stowage's messages."""
    with override_settings(STORAGES={"default": default, "staticfiles": staticfiles, **more}):
        return [m for m in run_checks() if str(m.id).startswith("stowage.")]


def ids(found: list[CheckMessage]) -> list[str]:
    """Return the ids of ``found``, in order."""
    return [str(m.id) for m in found]


def only(found: list[CheckMessage], check_id: str) -> CheckMessage:
    """Return the one message of ``found``, checking it is ``check_id``."""
    assert ids(found) == [check_id], [str(m) for m in found]
    return found[0]


# -- the app -------------------------------------------------------------------------------


def test_the_app_registers_the_checks() -> None:
    config = apps.get_app_config("stowage")
    assert isinstance(config, StowageConfig)
    registered: list[Any] = registry.get_checks()
    assert checks.check_storage_options in registered
    assert checks.check_storage_security in registered
    assert checks.check_static_urls in registered


def test_a_sound_configuration_passes() -> None:
    found = messages(
        default=entry("S3Storage", **S3),
        staticfiles=entry("ManifestStaticStorage", driver="s3", **S3),
        backups=entry("MemoryStorage", namespace="backups"),
    )
    assert found == []


def test_django_storages_are_left_alone() -> None:
    odd = {"BACKEND": "django.core.files.storage.InMemoryStorage", "OPTIONS": {"nope": 1}}
    missing = {"BACKEND": "stowage.NoSuchStorage"}
    assert messages(default=odd, elsewhere=missing) == []


# -- E001: the extra is missing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "sdk_module", "extra"),
    [
        (entry("S3Storage", bucket_name="b"), "obstore", "s3"),
        (entry("AzureStorage", azure_container="c"), "obstore", "azure"),
        (entry("GCSStorage", bucket_name="b"), "google.auth", "gcs"),
    ],
)
def test_e001_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], sdk_module: str, extra: str
) -> None:
    # None in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, sdk_module, None)
    drivers = ("stowage.drivers.s3", "stowage.drivers.azure", "stowage.drivers._obstore")
    for module in [name for name in sys.modules if name.startswith(drivers)]:
        monkeypatch.delitem(sys.modules, module)
    error = only(messages(default=config), "stowage.E001")
    assert f"'{extra}' extra" in error.msg
    assert f"pip install 'django-stowage[{extra}]'" in error.msg
    assert error.hint == f"Install it: pip install 'django-stowage[{extra}]'"
    assert error.is_serious()


class NeedsPackageDriver(MemoryDriver):
    """A driver whose optional package is missing, as a third-party driver reports it."""

    def __init__(self, options: DriverOptions) -> None:
        raise MissingDependency("This driver needs frobnicate: pip install 'frobnicate>=2'.")


def test_e001_hint_repeats_the_command_the_driver_gives() -> None:
    found = messages(default=entry("Storage", driver="tests.test_checks:NeedsPackageDriver"))
    error = only(found, "stowage.E001")
    assert "needs frobnicate" in error.msg
    assert error.hint == "Install it: pip install 'frobnicate>=2'"


def test_e001_does_not_fire_when_the_extras_are_installed() -> None:
    found = messages(
        default=entry("S3Storage", **S3),
        gcs=entry("GCSStorage", bucket_name="b", api_endpoint="http://127.0.0.1:9"),
        azure=entry("AzureStorage", azure_container="c", account_name="acct"),
    )
    assert "stowage.E001" not in ids(found)


# -- E002: invalid options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (entry("S3Storage", **S3, bucket_nmae="x"), "'bucket_nmae'"),
        (entry("S3Storage", **S3, querystring_expire="soon"), "'querystring_expire'"),
        (entry("S3Storage", **S3, base_url="https://cdn.example.com"), "'base_url'"),
        (entry("S3Storage", **S3, default_acl="public-read"), "'default_acl'"),
        (entry("S3Storage", endpoint_url="http://127.0.0.1:9"), "'bucket_name'"),
        (entry("Storage", driver="nosuch"), "'nosuch'"),
        (entry("StaticStorage", driver="memory", upload_workers=-1), "'upload_workers'"),
        (
            entry("ManifestStaticStorage", driver="memory", manifest_strict="no"),
            "'manifest_strict'",
        ),
        (entry("LocalStorage", location=""), "'location'"),
        ({"BACKEND": "stowage.S3Storage", "OPTIONS": ["bucket_name"]}, "OPTIONS must be a dict"),
    ],
)
def test_e002_carries_the_error_naming_the_option(config: dict[str, Any], named: str) -> None:
    error = only(messages(default=config), "stowage.E002")
    assert named in error.msg
    assert error.obj == "STORAGES['default']"
    assert error.hint


@pytest.mark.parametrize(
    ("options", "fallbacks"),
    [
        ({**S3, "secret_key": b"bytes-are-no-key"}, {}),
        (
            {k: v for k, v in S3.items() if k != "secret_key"},
            {"AWS_S3_SECRET_ACCESS_KEY": b"bytes-are-no-key"},
        ),
    ],
)
def test_e002_never_shows_a_secret(options: dict[str, Any], fallbacks: dict[str, Any]) -> None:
    with override_settings(**fallbacks):
        error = only(messages(default=entry("S3Storage", **options)), "stowage.E002")
    assert "Option 'secret_key' must be" in error.msg
    assert "bytes-are-no-key" not in str(error)


# -- W001: signed URLs asked for, public ones given ----------------------------------------


def test_w001_custom_domain_without_signing_on_it() -> None:
    found = messages(default=entry("S3Storage", **S3, custom_domain="cdn.example.com"))
    warning = only(found, "stowage.W001")
    assert "'https://cdn.example.com'" in warning.msg
    assert "sign_custom_domain=True" in str(warning.hint)


@pytest.mark.parametrize(
    "config",
    [
        entry("S3Storage", **S3, custom_domain="cdn.example.com", sign_custom_domain=True),
        entry("S3Storage", **S3, base_url="https://cdn.example.com/"),
        entry(
            "GCSStorage",
            bucket_name="b",
            api_endpoint="http://127.0.0.1:9",
            custom_domain="cdn.example.com",
        ),
        LOCAL,
        entry("LocalStorage", base_url="/files/"),
    ],
)
def test_w001_does_not_fire_when_urls_are_signed_or_nothing_asked_it(
    config: dict[str, Any],
) -> None:
    assert messages(default=config) == []


def test_w001_querystring_auth_on_a_driver_that_cannot_sign() -> None:
    found = messages(default=entry("LocalStorage", querystring_auth=True))
    warning = only(found, "stowage.W001")
    assert "'local' driver cannot sign" in warning.msg


# -- W002: SFTP trusts any host key --------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        entry("SFTPStorage", host="127.0.0.1", accept_unknown_host_keys=True),
        entry("Storage", driver="sftp", host="127.0.0.1", accept_unknown_host_keys=True),
    ],
)
def test_w002_sftp_accepting_unknown_host_keys(config: dict[str, Any]) -> None:
    found = [m for m in messages(default=config) if m.id == "stowage.W002"]
    warning = only(found, "stowage.W002")
    assert "unknown host keys" in warning.msg
    assert "known_hosts" in str(warning.hint)


@pytest.mark.parametrize(
    "config",
    [
        entry("SFTPStorage", host="127.0.0.1"),
        entry("SFTPStorage", host="127.0.0.1", accept_unknown_host_keys=False),
        entry("S3Storage", **S3),
    ],
)
def test_w002_does_not_fire_otherwise(config: dict[str, Any]) -> None:
    assert "stowage.W002" not in ids(messages(default=config))


# -- W003: public media --------------------------------------------------------------------


def test_w003_unsigned_urls_on_the_default_storage() -> None:
    found = messages(default=entry("S3Storage", **S3, querystring_auth=False))
    warning = only(found, "stowage.W003")
    assert "querystring_auth=False" in warning.msg
    assert "SILENCED_SYSTEM_CHECKS" in str(warning.hint)


def test_w003_follows_the_django_storages_setting() -> None:
    with override_settings(AWS_QUERYSTRING_AUTH=False):
        found = messages(default=entry("S3Storage", **S3))
    only(found, "stowage.W003")


@pytest.mark.parametrize(
    ("default", "more"),
    [
        (entry("S3Storage", **S3), {}),
        (LOCAL, {"public": entry("S3Storage", **S3, querystring_auth=False)}),
        (entry("LocalStorage", querystring_auth=False), {}),
    ],
)
def test_w003_does_not_fire_otherwise(default: dict[str, Any], more: dict[str, Any]) -> None:
    assert messages(default=default, **more) == []


# -- W004: static files need lasting public URLs -------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        entry("S3Storage", **S3),
        entry("StaticStorage", driver="s3", **S3, querystring_auth=True),
        entry("ManifestStaticStorage", driver="s3", **S3, querystring_auth=True),
    ],
)
def test_w004_signed_static_urls(config: dict[str, Any]) -> None:
    warning = only(messages(staticfiles=config), "stowage.W004")
    assert "expire" in warning.msg
    assert "(3600 s)" in warning.msg
    assert warning.obj == "STORAGES['staticfiles']"


def test_w004_static_storage_without_any_public_url() -> None:
    found = messages(staticfiles=entry("StaticStorage", driver="memory"))
    warning = only(found, "stowage.W004")
    assert "'memory' driver gives no public URL" in warning.msg
    assert "base_url" in str(warning.hint)


@pytest.mark.parametrize(
    "config",
    [
        entry("StaticStorage", driver="s3", **S3),
        entry("StaticStorage", driver="s3", **S3, custom_domain="static.example.com"),
        entry("StaticStorage", location="collected"),
        entry("ManifestStaticStorage", location="collected"),
        entry("StaticStorage", driver="memory", base_url="/static/"),
        entry("S3Storage", **S3, querystring_auth=False),
    ],
)
def test_w004_does_not_fire_for_public_static_urls(config: dict[str, Any]) -> None:
    assert messages(staticfiles=config) == []


# -- no request, ever ----------------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, socket.socket]]:
    """Listen on loopback without ever answering: any client request would show up here."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener


def test_checks_make_no_request(silent_endpoint: tuple[str, socket.socket]) -> None:
    endpoint, listener = silent_endpoint
    options = {**S3, "endpoint_url": endpoint, "timeout": 1.0, "max_retries": 0}
    found = messages(
        default=entry("S3Storage", **options),
        staticfiles=entry("ManifestStaticStorage", driver="s3", **options),
        gcs=entry("GCSStorage", bucket_name="b", api_endpoint=endpoint),
        azure=entry("AzureStorage", azure_container="c", account_name="a", endpoint=endpoint),
    )
    assert found == []
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()


# -- W009: exists_by_listing asked for where exists() cannot be one listing ----------------

#: S3 behind a SOCKS proxy: stowage's own client (which sends the listing) cannot use it.
PROXIED_S3 = {**S3, "proxies": {"http": "socks5://127.0.0.1:9"}}
#: Azure with a service principal: obstore holds the tokens.
PRINCIPAL = {
    "azure_container": "c",
    "account_name": "a",
    "client_id": "app",
    "client_secret": "principal-secret",
    "tenant_id": "tenant",
}


class ListingS3Storage(S3Storage):
    exists_by_listing = True


@pytest.mark.parametrize(
    ("config", "why"),
    [
        (entry("S3Storage", exists_by_listing=True, **PROXIED_S3), "a socks5:// proxy"),
        (entry("AzureStorage", exists_by_listing=True, **PRINCIPAL), "a service principal"),
        ({"BACKEND": "tests.test_checks.ListingS3Storage", "OPTIONS": PROXIED_S3}, "socks5://"),
    ],
)
def test_w009_exists_by_listing_asked_for_where_it_cannot_be_one_listing(
    config: dict[str, Any], why: str
) -> None:
    warning = only(messages(default=config), "stowage.W009")
    assert why in warning.msg
    assert "two requests for a missing name" in warning.msg
    assert warning.obj == "STORAGES['default']"
    assert "remove exists_by_listing" in str(warning.hint)


@pytest.mark.parametrize(
    "config",
    [
        entry("S3Storage", **PROXIED_S3),  # the default: documented, not asked for
        entry("S3Storage", exists_by_listing=False, **PROXIED_S3),
        entry("S3Storage", exists_by_listing=True, **S3),  # it lists
        entry("AzureStorage", **PRINCIPAL),
    ],
)
def test_w009_does_not_fire_otherwise(config: dict[str, Any]) -> None:
    assert "stowage.W009" not in ids(messages(default=config))


# -- manage.py check -----------------------------------------------------------------------


def test_manage_py_check_prints_the_warnings() -> None:
    out = io.StringIO()
    storages = {
        "default": entry("S3Storage", **S3, querystring_auth=False),
        "staticfiles": entry("S3Storage", **S3),
    }
    with override_settings(STORAGES=storages):
        call_command("check", stdout=out, stderr=out)
    text = out.getvalue()
    assert "STORAGES['default']: (stowage.W003) querystring_auth=False" in text
    assert "STORAGES['staticfiles']: (stowage.W004) Static files get signed URLs" in text
    assert "HINT: Keep signed URLs" in text
    assert "System check identified 2 issues (0 silenced)." in text


def test_manage_py_check_fails_on_errors() -> None:
    storages = {"default": entry("S3Storage", **S3, bucket_nmae="x"), "staticfiles": DJANGO_STATIC}
    with override_settings(STORAGES=storages), pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "STORAGES['default']: (stowage.E002) Invalid storage options: Unknown storage " in text
    assert "option 'bucket_nmae'" in text


def test_manage_py_check_silences_by_id() -> None:
    out = io.StringIO()
    storages = {
        "default": entry("S3Storage", **S3, querystring_auth=False),
        "staticfiles": DJANGO_STATIC,
    }
    with override_settings(STORAGES=storages, SILENCED_SYSTEM_CHECKS=["stowage.W003"]):
        call_command("check", stdout=out)
    assert "System check identified no issues (1 silenced)." in out.getvalue()
