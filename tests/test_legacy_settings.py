"""DEFAULT_FILE_STORAGE and STATICFILES_STORAGE (stowage.E003) and ``manage.py stowage settings``.

Django ignores both settings since 5.1. The check names them and its hint
is the STORAGES block to paste; the command prints the same block. The
block must be Python that runs once the settings it names are bound, give
the expected STORAGES, build without an error, and never show a secret.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from storages.backends.s3 import S3Storage as DjangoStoragesS3

from stowage import checks
from stowage.registry import BUILTIN_DRIVERS, DriverSpec

#: Secret values given to the settings: none may appear in any output.
SECRETS = {
    "AWS_S3_ACCESS_KEY_ID": "legacy-access-key-1f3a",
    "AWS_S3_SECRET_ACCESS_KEY": "legacy-secret-key-9c2e",
    "GS_CREDENTIALS": {"type": "service_account", "private_key": "legacy-gcs-key-77d1"},
    "AZURE_ACCOUNT_KEY": "bGVnYWN5LWF6dXJlLWtleS01YjBm",
    "SFTP_STORAGE_PARAMS": {"password": "legacy-sftp-password-4e8a"},
    "FTP_STORAGE_LOCATION": "ftp://legacy:legacy-ftp-password-0d6c@127.0.0.1:2121/files",
}
#: Every secret value, as text, to look for in outputs.
SECRET_TEXTS = [
    "legacy-access-key-1f3a",
    "legacy-secret-key-9c2e",
    "legacy-gcs-key-77d1",
    "bGVnYWN5LWF6dXJlLWtleS01YjBm",
    "legacy-sftp-password-4e8a",
    "legacy-ftp-password-0d6c",
]
#: Plain settings of each service, read by stowage as fallbacks.
PLAIN = {
    "AWS_STORAGE_BUCKET_NAME": "media",
    "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_QUERYSTRING_EXPIRE": 600,
    "GS_BUCKET_NAME": "gcs-media",
    "AZURE_CONTAINER": "azure-media",
    "AZURE_ACCOUNT_NAME": "legacyaccount",
    "SFTP_STORAGE_HOST": "127.0.0.1",
    "SFTP_STORAGE_ROOT": "/srv/files",
}
DJANGO_DEFAULTS = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


class MediaStorage(DjangoStoragesS3):
    """A project's own subclass of a django-storages backend."""

    location = "media"


def legacy_messages(**settings: Any) -> list[CheckMessage]:
    """Run every system check under ``settings``; return the stowage.E003 messages."""
    with override_settings(**settings):
        return [m for m in run_checks() if m.id == "stowage.E003"]


def command_output(**settings: Any) -> str:
    """Run ``manage.py stowage settings`` under ``settings``; return what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with override_settings(**settings):
        call_command("stowage", "settings", stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def referenced_names(block: str) -> set[str]:
    """Return the names the block reads (the settings it refers to)."""
    tree = ast.parse(block)
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - {"STORAGES"}


def run_block(block: str, bound: Mapping[str, Any]) -> dict[str, Any]:
    """Execute ``block`` as settings.py would, with ``bound`` names defined; return STORAGES."""
    namespace = dict(bound)
    missing = referenced_names(block) - set(namespace)
    assert not missing, f"the block reads undefined names {missing}:\n{block}"
    exec(compile(block, "settings.py", "exec"), namespace)
    storages: dict[str, Any] = namespace["STORAGES"]
    return storages


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRET_TEXTS:
            assert secret not in text, f"secret {secret!r} shown in:\n{text}"


def hint(message: CheckMessage) -> str:
    assert message.hint is not None
    return str(message.hint)


def block_of(message: CheckMessage) -> str:
    """Return the STORAGES block the hint of ``message`` holds."""
    text = hint(message)
    return text[text.index("\n") + 1 :]


# -- the check --------------------------------------------------------------------------------


def test_the_app_registers_the_check() -> None:
    assert checks.check_legacy_storage_settings in registry.get_checks()


def test_no_legacy_setting_no_message() -> None:
    assert legacy_messages() == []
    assert legacy_messages(STORAGES=DJANGO_DEFAULTS, **PLAIN, **SECRETS) == []


def test_default_file_storage_alone() -> None:
    [message] = legacy_messages(
        DEFAULT_FILE_STORAGE="storages.backends.s3boto3.S3Boto3Storage",
        STORAGES=DJANGO_DEFAULTS,
        **PLAIN,
        **SECRETS,
    )
    assert message.is_serious()
    assert message.obj == "settings.DEFAULT_FILE_STORAGE"
    assert "DEFAULT_FILE_STORAGE = 'storages.backends.s3boto3.S3Boto3Storage'" in message.msg
    assert "ignored" in message.msg
    assert "since 5.1" in message.msg
    assert "'django.core.files.storage.FileSystemStorage' from STORAGES['default']" in message.msg
    assert hint(message).startswith("Delete DEFAULT_FILE_STORAGE and set STORAGES instead")
    with override_settings(**PLAIN, **SECRETS):
        storages = run_block(block_of(message), SECRETS)
    assert storages["default"] == {
        "BACKEND": "stowage.S3Storage",
        "OPTIONS": {
            "bucket_name": "media",
            "endpoint_url": "http://127.0.0.1:9",
            "access_key": SECRETS["AWS_S3_ACCESS_KEY_ID"],
            "secret_key": SECRETS["AWS_S3_SECRET_ACCESS_KEY"],
            "querystring_expire": 600,
        },
    }
    # The other alias is translated from STORAGES.
    assert storages["staticfiles"] == {"BACKEND": "stowage.StaticStorage"}
    assert_no_secret(message.msg, hint(message))


def test_staticfiles_storage_alone() -> None:
    [message] = legacy_messages(
        STATICFILES_STORAGE="storages.backends.s3.S3ManifestStaticStorage",
        AWS_QUERYSTRING_AUTH=True,
        **PLAIN,
        **SECRETS,
    )
    assert message.obj == "settings.STATICFILES_STORAGE"
    assert "STATICFILES_STORAGE = 'storages.backends.s3.S3ManifestStaticStorage'" in message.msg
    storages = run_block(block_of(message), SECRETS)
    static = storages["staticfiles"]
    assert static["BACKEND"] == "stowage.ManifestStaticStorage"
    assert static["OPTIONS"]["driver"] == "s3"
    assert static["OPTIONS"]["bucket_name"] == "media"
    # A static storage's URLs stay unsigned, as django-storages' static classes fix them.
    assert "querystring_auth" not in static["OPTIONS"]
    assert storages["default"] == {"BACKEND": "stowage.LocalStorage"}
    assert_no_secret(message.msg, hint(message))


def test_both_settings_one_error_each_with_the_same_block() -> None:
    settings = {
        "DEFAULT_FILE_STORAGE": "storages.backends.gcloud.GoogleCloudStorage",
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        **PLAIN,
        **SECRETS,
    }
    found = legacy_messages(**settings)
    assert sorted(str(m.obj) for m in found) == [
        "settings.DEFAULT_FILE_STORAGE",
        "settings.STATICFILES_STORAGE",
    ]
    first, second = (block_of(m) for m in found)
    assert first == second
    assert first.startswith(
        "# Delete DEFAULT_FILE_STORAGE and STATICFILES_STORAGE: Django ignores them since 5.1"
    )
    storages = run_block(first, SECRETS)
    assert storages["default"] == {
        "BACKEND": "stowage.GCSStorage",
        "OPTIONS": {"bucket_name": "gcs-media", "credentials": SECRETS["GS_CREDENTIALS"]},
    }
    assert storages["staticfiles"] == {"BACKEND": "stowage.ManifestStaticStorage"}
    assert command_output(**settings) == first
    assert_no_secret(*(m.msg for m in found), *(hint(m) for m in found))


def test_manage_py_check_fails_on_a_legacy_setting() -> None:
    with (
        override_settings(DEFAULT_FILE_STORAGE="storages.backends.s3.S3Storage", **SECRETS),
        pytest.raises(SystemCheckError) as failure,
    ):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "(stowage.E003) DEFAULT_FILE_STORAGE" in str(failure.value)
    assert "AWS_S3_SECRET_ACCESS_KEY" in str(failure.value)
    assert_no_secret(str(failure.value))


def test_a_class_given_instead_of_its_path() -> None:
    from django.core.files.storage import InMemoryStorage

    [message] = legacy_messages(DEFAULT_FILE_STORAGE=InMemoryStorage)
    assert "'django.core.files.storage.memory.InMemoryStorage'" in message.msg
    assert run_block(block_of(message), {})["default"] == {"BACKEND": "stowage.MemoryStorage"}


# -- the mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "backend", "driver"),
    [
        ("storages.backends.s3boto3.S3Boto3Storage", "stowage.S3Storage", None),
        ("storages.backends.s3boto3.S3StaticStorage", "stowage.StaticStorage", "s3"),
        (
            "storages.backends.s3boto3.S3ManifestStaticStorage",
            "stowage.ManifestStaticStorage",
            "s3",
        ),
        ("storages.backends.s3.S3Storage", "stowage.S3Storage", None),
        ("storages.backends.s3.S3StaticStorage", "stowage.StaticStorage", "s3"),
        ("storages.backends.s3.S3ManifestStaticStorage", "stowage.ManifestStaticStorage", "s3"),
        ("storages.backends.gcloud.GoogleCloudStorage", "stowage.GCSStorage", None),
        ("storages.backends.azure_storage.AzureStorage", "stowage.AzureStorage", None),
        ("storages.backends.sftpstorage.SFTPStorage", "stowage.SFTPStorage", None),
        ("storages.backends.ftp.FTPStorage", "stowage.FTPStorage", None),
        ("django.core.files.storage.FileSystemStorage", "stowage.LocalStorage", None),
        ("django.core.files.storage.InMemoryStorage", "stowage.MemoryStorage", None),
        ("django.contrib.staticfiles.storage.StaticFilesStorage", "stowage.StaticStorage", None),
        (
            "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
            "stowage.ManifestStaticStorage",
            None,
        ),
    ],
)
@pytest.mark.parametrize("setting", ["DEFAULT_FILE_STORAGE", "STATICFILES_STORAGE"])
def test_each_class_path_is_mapped_and_builds(
    path: str, backend: str, driver: str | None, setting: str, tmp_path: Any
) -> None:
    from django.utils.module_loading import import_string

    import_string(path)  # the path is real in the installed django-storages / Django
    alias = "default" if setting == "DEFAULT_FILE_STORAGE" else "staticfiles"
    [message] = legacy_messages(**{setting: path}, **PLAIN, **SECRETS)
    storages = run_block(block_of(message), SECRETS)
    entry = storages[alias]
    assert entry["BACKEND"] == backend
    assert entry.get("OPTIONS", {}).get("driver") == driver
    assert_no_secret(message.msg, hint(message))
    # Pasted into settings.py, every stowage alias builds: its OPTIONS are valid.
    with override_settings(STORAGES=storages, STATIC_ROOT=str(tmp_path), **PLAIN, **SECRETS):
        built = {c.alias: c for c in checks.configured_storages()}
    assert built[alias].error is None, built[alias].error


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "storages.backends.azure_storage.AzureStorage",
            {
                "azure_container": "azure-media",
                "account_name": "legacyaccount",
                "account_key": SECRETS["AZURE_ACCOUNT_KEY"],
            },
        ),
        (
            "storages.backends.sftpstorage.SFTPStorage",
            {
                "host": "127.0.0.1",
                "params": SECRETS["SFTP_STORAGE_PARAMS"],
                "root_path": "/srv/files",
            },
        ),
        ("storages.backends.ftp.FTPStorage", {"location": SECRETS["FTP_STORAGE_LOCATION"]}),
    ],
)
def test_each_service_shows_its_settings_as_options(path: str, expected: dict[str, Any]) -> None:
    [message] = legacy_messages(DEFAULT_FILE_STORAGE=path, **PLAIN, **SECRETS)
    block = block_of(message)
    assert run_block(block, SECRETS)["default"]["OPTIONS"] == expected
    assert "optional while that setting stays" in block
    assert_no_secret(block)


def test_secrets_appear_as_the_settings_holding_them() -> None:
    block = command_output(
        DEFAULT_FILE_STORAGE="storages.backends.s3.S3Storage", **PLAIN, **SECRETS
    )
    assert '"secret_key": AWS_S3_SECRET_ACCESS_KEY,' in block
    assert '"access_key": AWS_S3_ACCESS_KEY_ID,' in block
    assert "\"bucket_name\": 'media',  # AWS_STORAGE_BUCKET_NAME" in block
    assert referenced_names(block) == {"AWS_S3_ACCESS_KEY_ID", "AWS_S3_SECRET_ACCESS_KEY"}
    assert_no_secret(block)


def test_django_storages_second_choice_credentials_are_kept_by_name() -> None:
    # django-storages reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when the AWS_S3_*
    # names are not set; the block names whichever the project sets.
    secrets = {"AWS_ACCESS_KEY_ID": "second-access-5a1", "AWS_SECRET_ACCESS_KEY": "second-key-3b7"}
    block = command_output(
        DEFAULT_FILE_STORAGE="storages.backends.s3.S3Storage",
        AWS_STORAGE_BUCKET_NAME="media",
        **secrets,
    )
    options = run_block(block, secrets)["default"]["OPTIONS"]
    assert options["access_key"] == "second-access-5a1"
    assert options["secret_key"] == "second-key-3b7"
    assert '"access_key": AWS_ACCESS_KEY_ID,' in block
    assert '"secret_key": AWS_SECRET_ACCESS_KEY,' in block
    assert "second-access-5a1" not in block
    assert "second-key-3b7" not in block


def test_unknown_class_is_kept_and_its_secret_looking_options_hidden() -> None:
    block = command_output(
        DEFAULT_FILE_STORAGE="myproject.storage.VaultStorage",
        STORAGES={
            **DJANGO_DEFAULTS,
            "archive": {
                "BACKEND": "myproject.storage.ArchiveStorage",
                "OPTIONS": {"api_token": "archive-token-6e2", "shelf": 3},
            },
        },
    )
    storages = run_block(block, {"STOWAGE_ARCHIVE_API_TOKEN": "archive-token-6e2"})
    assert storages["default"] == {"BACKEND": "myproject.storage.VaultStorage"}
    assert storages["archive"] == {
        "BACKEND": "myproject.storage.ArchiveStorage",
        "OPTIONS": {"api_token": "archive-token-6e2", "shelf": 3},
    }
    assert "define STOWAGE_ARCHIVE_API_TOKEN above" in block
    assert "archive-token-6e2" not in block


def test_a_subclass_of_a_django_storages_class_is_kept_with_advice() -> None:
    path = f"{__name__}.MediaStorage"
    [message] = legacy_messages(DEFAULT_FILE_STORAGE=path, STORAGES=DJANGO_DEFAULTS)
    block = block_of(message)
    assert run_block(block, {})["default"] == {"BACKEND": path}
    assert "derives from storages.backends.s3.S3Storage: derive it from stowage.S3Storage" in (
        " ".join(line.strip("# ") for line in block.splitlines())
    )


# -- the command ------------------------------------------------------------------------------


def test_command_without_legacy_settings_translates_storages() -> None:
    storages = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "media",
                "secret_key": "inline-secret-8f0",
                "signature_version": "s3v2-legacy",
                "cusotm_flag": "weird-value-19",
                "file_overwrite": True,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "backups": {"BACKEND": "stowage.MemoryStorage", "OPTIONS": {"namespace": "backups"}},
    }
    block = command_output(STORAGES=storages)
    assert not block.startswith("# Delete")
    ast.parse(block)
    assert run_block(block, {"STOWAGE_DEFAULT_SECRET_KEY": "inline-secret-8f0"}) == {
        "default": {
            "BACKEND": "stowage.S3Storage",
            "OPTIONS": {
                "bucket_name": "media",
                "secret_key": "inline-secret-8f0",
                "file_overwrite": True,
            },
        },
        "staticfiles": {"BACKEND": "stowage.StaticStorage"},
        "backups": {"BACKEND": "stowage.MemoryStorage", "OPTIONS": {"namespace": "backups"}},
    }
    assert "inline-secret-8f0" not in block
    # An option stowage refuses or does not know is shown commented out, without
    # its value: the comment says what to do.
    assert '# "signature_version": stowage signs every request' in block
    assert "s3v2-legacy" not in block
    assert '# "cusotm_flag": not a stowage option' in block
    assert "weird-value-19" not in block


def test_command_references_the_setting_that_holds_an_inline_secret() -> None:
    block = command_output(
        STORAGES={
            **DJANGO_DEFAULTS,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"secret_key": SECRETS["AWS_S3_SECRET_ACCESS_KEY"]},
            },
        },
        AWS_STORAGE_BUCKET_NAME="media",
        AWS_S3_SECRET_ACCESS_KEY=SECRETS["AWS_S3_SECRET_ACCESS_KEY"],
    )
    assert '"secret_key": AWS_S3_SECRET_ACCESS_KEY,' in block
    assert_no_secret(block)


def test_command_with_the_test_settings() -> None:
    block = command_output()
    assert run_block(block, {}) == {
        "default": {"BACKEND": "stowage.LocalStorage"},
        "staticfiles": {"BACKEND": "stowage.StaticStorage"},
    }


def test_command_with_legacy_settings_matches_the_check_hint() -> None:
    settings = {
        "DEFAULT_FILE_STORAGE": "storages.backends.s3.S3Storage",
        "STATICFILES_STORAGE": "storages.backends.s3.S3StaticStorage",
        **PLAIN,
        **SECRETS,
    }
    block = command_output(**settings)
    found = legacy_messages(**settings)
    assert [block_of(m) for m in found] == [block, block]
    storages = run_block(block, SECRETS)
    assert storages["staticfiles"]["BACKEND"] == "stowage.StaticStorage"
    assert storages["staticfiles"]["OPTIONS"]["driver"] == "s3"
    assert_no_secret(block)


@pytest.fixture
def s3_driver_unloadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the s3 driver fail to load, as without its extra."""
    monkeypatch.setitem(BUILTIN_DRIVERS, "s3", DriverSpec("stowage.drivers.s3_gone:S3Driver", "s3"))
    return


def test_a_driver_that_cannot_load_still_hides_secrets(s3_driver_unloadable: None) -> None:
    block = command_output(
        STORAGES={
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"bucket_name": "media", "secret_key": "inline-secret-8f0"},
            }
        }
    )
    assert "inline-secret-8f0" not in block
    assert "stowage settings again" in block
    assert run_block(block, {"STOWAGE_DEFAULT_SECRET_KEY": "s"})["default"] == {
        "BACKEND": "stowage.S3Storage",
        "OPTIONS": {"bucket_name": "media", "secret_key": "s"},
    }
