"""Every django-storages setting and OPTIONS key is honoured or refused, never ignored.

The names are read from the installed django-storages' source, so a release
that adds a name fails here until ``stowage.django_storages`` states its fate.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import types
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings
from django.core.checks import CheckMessage
from django.test import override_settings

from stowage import AzureStorage, FTPStorage, GCSStorage, S3Storage
from stowage.checks import check_django_storages_settings
from stowage.config import StorageOptions
from stowage.django_storages import TABLES, BackendNames, names_for
from stowage.exceptions import ConfigurationError
from stowage.registry import load_driver

#: django-storages' backend module for each stowage driver.
MODULES = {
    "s3": "storages.backends.s3",
    "gcs": "storages.backends.gcloud",
    "azure": "storages.backends.azure_storage",
    "sftp": "storages.backends.sftpstorage",
    "ftp": "storages.backends.ftp",
}
#: A name each module surely has: proves the parser found the tables at all.
ANCHORS = {
    "s3": ("AWS_STORAGE_BUCKET_NAME", "bucket_name"),
    "gcs": ("GS_BUCKET_NAME", "bucket_name"),
    "azure": ("AZURE_CONTAINER", "azure_container"),
    "sftp": ("SFTP_STORAGE_HOST", "host"),
    "ftp": ("FTP_STORAGE_LOCATION", "location"),
}
S3 = {"bucket_name": "b", "endpoint_url": "http://127.0.0.1:9"}


def _tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"django-storages' {module} is not installed"
    assert spec.origin, f"django-storages' {module} is not installed"
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def django_storages_names(driver: str) -> tuple[set[str], set[str]]:
    """Return the global settings and the OPTIONS keys of one django-storages backend.

    Settings: the first argument of every ``setting("NAME", …)`` call in the
    module, less Django's own settings. OPTIONS keys: the keys of the dict
    ``get_default_settings()`` returns, and what ``__init__`` pops from its
    keywords (``cloudfront_signer``).
    """
    tree = _tree(MODULES[driver])
    found_settings: set[str] = set()
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            first = _string(node.args[0])
            if isinstance(func, ast.Name) and func.id == "setting" and first:
                found_settings.add(first)
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "pop"
                and isinstance(func.value, ast.Name)
                and func.value.id == "settings"
                and first
            ):
                keys.add(first)
        if isinstance(node, ast.FunctionDef) and node.name == "get_default_settings":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Dict):
                    keys.update(k for k in map(_string, inner.value.keys) if k)  # type: ignore[arg-type]
    django_own = {name for name in dir(global_settings) if name.isupper()}
    return found_settings - django_own, keys


def _option_fields(driver: str) -> set[str]:
    classes = (load_driver(driver).options_class, StorageOptions)
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


def _table(driver: str) -> BackendNames:
    return names_for(load_driver(driver))


# -- every name has a fate ----------------------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(MODULES))
def test_the_parser_finds_django_storages_names(driver: str) -> None:
    found_settings, keys = django_storages_names(driver)
    setting, key = ANCHORS[driver]
    assert setting in found_settings
    assert key in keys


@pytest.mark.parametrize("driver", sorted(MODULES))
def test_every_global_setting_is_honoured_or_refused(driver: str) -> None:
    table = _table(driver)
    honoured = {s for names in table.setting_candidates.values() for s in names}
    refused = set(table.refused_settings())
    found_settings, _ = django_storages_names(driver)
    missing = sorted(found_settings - honoured - refused)
    assert not missing, f"django-storages' {driver} settings with no fate in stowage: {missing}"
    assert not honoured & refused


@pytest.mark.parametrize("driver", sorted(MODULES))
def test_every_options_key_is_honoured_or_refused(driver: str) -> None:
    table = _table(driver)
    honoured = {h.option for h in table.honoured} | set(table.option_aliases)
    refused = set(table.refused_options())
    _, keys = django_storages_names(driver)
    missing = sorted(keys - honoured - refused)
    assert not missing, f"django-storages' {driver} OPTIONS keys with no fate in stowage: {missing}"


@pytest.mark.parametrize("driver", sorted(TABLES))
def test_the_table_names_real_options_and_refuses_only_unknown_names(driver: str) -> None:
    table = _table(driver)
    fields = _option_fields(driver)
    for honoured in table.honoured:
        assert honoured.option in fields, honoured
    assert set(table.option_aliases.values()) <= fields
    assert not set(table.option_aliases) & fields
    assert not set(table.refused_options()) & fields
    for refused in table.refused:
        assert refused.instead.rstrip().endswith("."), refused
    settings_listed = [s for names in table.setting_candidates.values() for s in names]
    assert len(settings_listed) == len(set(settings_listed)), "a setting feeds two options"


# -- honoured names arrive in the options ----------------------------------------------------------


def test_aws_credentials_settings_as_in_django_storages() -> None:
    with override_settings(
        AWS_ACCESS_KEY_ID="plain-id",
        AWS_SECRET_ACCESS_KEY="plain-secret",
        AWS_SECURITY_TOKEN="old-token",
    ):
        plain = S3Storage(**S3).driver_options
        with override_settings(
            AWS_S3_ACCESS_KEY_ID="s3-id",
            AWS_S3_SECRET_ACCESS_KEY="s3-secret",
            AWS_SESSION_TOKEN="new-token",
        ):
            specific = S3Storage(**S3).driver_options
            given = S3Storage(**S3, access_key="given", security_token="given-token")
    assert (plain.access_key, plain.secret_key) == ("plain-id", "plain-secret")  # type: ignore[attr-defined]
    assert plain.session_token == "old-token"  # type: ignore[attr-defined]
    assert (specific.access_key, specific.secret_key) == ("s3-id", "s3-secret")  # type: ignore[attr-defined]
    assert specific.session_token == "new-token"  # type: ignore[attr-defined]
    assert given.driver_options.access_key == "given"  # type: ignore[attr-defined]
    assert given.driver_options.session_token == "given-token"  # type: ignore[attr-defined]
    assert "given-token" not in str(given.deconstruct())


def test_security_token_and_session_token_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="mean the same"):
        S3Storage(**S3, security_token="a", session_token="b")


def test_gcs_custom_endpoint_is_custom_domain_as_in_django_storages() -> None:
    with override_settings(GS_CUSTOM_ENDPOINT="https://cdn.example.com"):
        storage = GCSStorage(bucket_name="b", anonymous=True)
    assert storage.options.custom_domain == "https://cdn.example.com"
    assert storage.driver_options.api_endpoint is None  # type: ignore[attr-defined]
    given = GCSStorage(
        bucket_name="b",
        anonymous=True,
        querystring_auth=False,
        custom_endpoint="https://cdn.example.com",
    )
    assert given.options.custom_domain == "https://cdn.example.com"
    assert given.url("a.txt") == "https://cdn.example.com/a.txt"


def test_azure_settings_that_map_to_existing_options() -> None:
    account = {"azure_container": "c", "account_name": "a", "account_key": "a2V5"}
    with override_settings(
        AZURE_UPLOAD_MAX_CONN=7,
        AZURE_CONNECTION_TIMEOUT_SECS=12,
        AZURE_BLOB_MAX_MEMORY_SIZE=1024,
    ):
        storage = AzureStorage(**account)
    assert storage.driver_options.multipart_concurrency == 7  # type: ignore[attr-defined]
    assert storage.driver_options.timeout == 12  # type: ignore[attr-defined]
    assert storage.options.max_memory_size == 1024
    spelled = AzureStorage(**account, upload_max_conn=3, default_content_type="text/plain")
    assert spelled.driver_options.multipart_concurrency == 3  # type: ignore[attr-defined]
    assert spelled.options.default_content_type == "text/plain"


def test_ftp_base_url_setting() -> None:
    with override_settings(BASE_URL="https://files.example.com/"):
        storage = FTPStorage(host="127.0.0.1")
    assert storage.driver_options.base_url == "https://files.example.com/"  # type: ignore[attr-defined]


# -- refused names say what to do ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "advice"),
    [
        ({"transfer_config": object()}, "multipart_chunksize"),
        ({"client_config": object()}, "connect_timeout"),
        ({"signature_version": "s3"}, "SigV4"),
        ({"use_ssl": False}, "http://"),
        ({"use_threads": False}, "multipart_concurrency=1"),
        ({"cloudfront_signer": object()}, "cloudfront_key_id and cloudfront_key"),
    ],
)
def test_refused_s3_options_say_what_to_use(options: dict[str, Any], advice: str) -> None:
    (key,) = options
    with pytest.raises(ConfigurationError) as caught:
        S3Storage(**S3, **options)
    message = str(caught.value)
    assert repr(key) in message
    assert advice in message


def test_values_that_ask_for_what_stowage_does_are_accepted() -> None:
    storage = S3Storage(**S3, use_ssl=True, signature_version="s3v4", use_threads=True)
    assert storage.driver_options.bucket_name == "b"  # type: ignore[attr-defined]
    AzureStorage(
        azure_container="c",
        account_name="a",
        endpoint_suffix="core.windows.net",
        client_options={},
        azure_ssl=True,
    )


def test_refused_azure_options_say_what_to_use() -> None:
    with pytest.raises(ConfigurationError, match=r"'token_credential' must have .*get_token"):
        AzureStorage(azure_container="c", account_name="a", token_credential=object()).driver  # noqa: B018
    with pytest.raises(ConfigurationError, match=r"'cache_control'.*object_parameters"):
        AzureStorage(azure_container="c", cache_control="max-age=60")


def test_s3_client_settings_of_django_storages_are_honoured(tmp_path: Path) -> None:
    bundle = tmp_path / "private-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with override_settings(
        AWS_S3_VERIFY=str(bundle),
        AWS_S3_PROXIES={"https": "proxy.internal:3128"},
        AWS_S3_SESSION_PROFILE="media",
    ):
        storage = S3Storage(bucket_name="b")
    options = storage.driver_options
    assert options.verify == str(bundle)  # type: ignore[attr-defined]
    assert options.proxies == {"https": "proxy.internal:3128"}  # type: ignore[attr-defined]
    assert options.profile == "media"  # type: ignore[attr-defined]
    assert S3Storage(bucket_name="b", session_profile="dev").driver_options.profile == "dev"  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="Option 'verify': cannot read the CA bundle"):
        S3Storage(**S3, verify=str(tmp_path / "missing.pem")).driver  # noqa: B018


def test_a_subclass_of_a_builtin_driver_keeps_its_table() -> None:
    from stowage.drivers.s3 import S3Driver

    sub = types.new_class("MyS3Driver", (S3Driver,))
    sub.setting_fallbacks = {"region_name": "MY_REGION"}  # type: ignore[attr-defined]
    table = names_for(sub)
    assert table.option_aliases["security_token"] == "session_token"
    assert table.setting_candidates["region_name"] == ("MY_REGION",)
    assert "transfer_config" in table.refused_options()


# -- refused global settings are reported by a system check -------------------------------------


def _w006(**settings: Any) -> list[CheckMessage]:
    with override_settings(**settings):
        return [m for m in check_django_storages_settings() if m.id == "stowage.W006"]


def test_check_reports_refused_settings_with_the_replacement() -> None:
    storages = {
        "default": {"BACKEND": "stowage.S3Storage", "OPTIONS": S3},
        "other": {"BACKEND": "stowage.S3Storage", "OPTIONS": S3},
    }
    found = _w006(
        STORAGES=storages,
        AWS_S3_CLIENT_CONFIG=object(),
        AWS_S3_TRANSFER_CONFIG=object(),
        AWS_S3_USE_SSL=True,
        AWS_S3_SIGNATURE_VERSION="s3v4",
    )
    by_object = {m.obj: m for m in found}
    assert sorted(by_object) == ["settings.AWS_S3_CLIENT_CONFIG", "settings.AWS_S3_TRANSFER_CONFIG"]
    assert "AWS_S3_CLIENT_CONFIG" in by_object["settings.AWS_S3_CLIENT_CONFIG"].msg
    assert "proxies" in str(by_object["settings.AWS_S3_CLIENT_CONFIG"].hint)
    assert "multipart_chunksize" in str(by_object["settings.AWS_S3_TRANSFER_CONFIG"].hint)


def test_check_ignores_settings_of_backends_not_in_use() -> None:
    storages = {"default": {"BACKEND": "stowage.MemoryStorage"}}
    assert _w006(STORAGES=storages, AWS_S3_TRANSFER_CONFIG=object()) == []


# -- the migration guide lists every name ------------------------------------------------------


def _load_hooks() -> types.ModuleType:
    path = Path(__file__).resolve().parents[2] / "docs" / "_hooks.py"
    spec = importlib.util.spec_from_file_location("stowage_docs_hooks_names", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("driver", sorted(MODULES))
def test_the_migration_table_shows_every_name(driver: str) -> None:
    table = _load_hooks().expand(f"<!-- migration: {driver} -->")
    found_settings, keys = django_storages_names(driver)
    same_name = {h.option for h in _table(driver).honoured}
    for name in sorted(found_settings | (keys - same_name)):
        assert f"<td><code>{name}</code></td>" in table, name
    for refused in _table(driver).refused:
        assert html_escaped(refused.instead) in table
    if driver == "s3":
        assert (
            "<code>AWS_ACCESS_KEY_ID</code></td><td><code>access_key</code></td><td>global "
            "setting, read when OPTIONS and <code>AWS_S3_ACCESS_KEY_ID</code> lack" in table
        )


def html_escaped(text: str) -> str:
    """Return ``text`` as the generated table writes it."""
    import html

    return html.escape(text)
