"""The Azure driver on Azurite: the kit, interop with azure-storage-blob, SAS URLs, options."""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import override_settings

from stowage import AzureStorage
from stowage.drivers.azure import AzureDriver, AzureOptions
from stowage.exceptions import UnsupportedOperation
from stowage.testing import (
    AsyncStorageContract,
    ClassAttributesContract,
    DriverContract,
    HostileNamesContract,
    StorageContract,
    SubclassContract,
)
from stowage.testing.url_contract import Fetch, http_fetch
from tests.servers._process import free_port
from tests.servers.azurite import ACCOUNT_KEY, Azurite


@pytest.fixture
def options(azurite: Azurite, azure_container: str) -> dict[str, Any]:
    return azurite.options(azure_container)


class TestAzureDriver(DriverContract):
    @pytest.fixture
    def driver(self, options: dict[str, Any]) -> AzureDriver:
        return AzureDriver(AzureOptions(**options, multipart_threshold=5 * 1024 * 1024))


class TestAzureStorage(
    StorageContract,
    AsyncStorageContract,
    HostileNamesContract,
    SubclassContract,
    ClassAttributesContract,
):
    secret_values = (ACCOUNT_KEY,)
    hostile_examples = 60

    @pytest.fixture
    def storage(self, options: dict[str, Any]) -> AzureStorage:
        return AzureStorage(location="media", **options)

    @pytest.fixture
    def fetch_url(self) -> Fetch:
        return http_fetch

    @pytest.fixture
    def broken_storage(self, options: dict[str, Any]) -> AzureStorage:
        closed = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
        return AzureStorage(
            location="media",
            **{**options, "endpoint": closed, "max_retries": 0, "connect_timeout": 1.0},
        )


def test_blocks_grow_to_stay_within_the_block_limit(options: dict[str, Any]) -> None:
    driver = AzureDriver(AzureOptions(**options))
    mib, tib = 1024 * 1024, 1024**4
    assert driver.part_size(1024 * mib) == 4 * mib
    assert driver.part_size(tib) == 21 * mib  # 20.97 MiB needed for 50,000 blocks


def test_stowage_writes_the_sdk_reads(options: dict[str, Any], azurite: Azurite) -> None:
    storage = AzureStorage(
        object_parameters={"cache_control": "max-age=60", "metadata": {"owner": "docs"}},
        **options,
    )
    name = storage.save("report.pdf", ContentFile(b"%PDF"))
    blob = azurite.client().get_blob_client(options["azure_container"], name)
    properties = blob.get_blob_properties()
    assert properties.content_settings.content_type == "application/pdf"
    assert properties.content_settings.cache_control == "max-age=60"
    assert properties.metadata == {"owner": "docs"}
    assert blob.download_blob().readall() == b"%PDF"


def test_the_sdk_writes_stowage_reads(options: dict[str, Any], azurite: Azurite) -> None:
    from azure.storage.blob import ContentSettings

    azurite.client().get_blob_client(options["azure_container"], "in/data.json").upload_blob(
        b"{}", content_settings=ContentSettings(content_type="application/json")
    )
    storage = AzureStorage(**options)
    assert storage.open("in/data.json").read() == b"{}"
    assert storage.listdir("in") == ([], ["data.json"])
    assert storage.driver.head("in/data.json").content_type == "application/json"


def test_sas_url_fetches_the_body_and_expires(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    storage.save("sas.txt", ContentFile(b"shared"))
    url = storage.url("sas.txt", expire=60)
    assert "sig=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"shared"
    short = storage.url("sas.txt", expire=1)
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(short, timeout=10)
    assert refused.value.code == 403


def test_sas_url_for_uploads(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    url = storage.url("up/direct.bin", method="PUT", expire=dt.timedelta(minutes=5))
    request = urllib.request.Request(
        url, data=b"from a browser", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    urllib.request.urlopen(request, timeout=10).close()
    assert storage.open("up/direct.bin").read() == b"from a browser"


def test_unknown_sas_parameters_are_refused_clearly(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    with pytest.raises(
        UnsupportedOperation, match=r"'ResponseExpires'.*ResponseContentDisposition"
    ):
        storage.url("a.txt", parameters={"ResponseExpires": "Thu, 01 Jan 2037 00:00:00 GMT"})
    with pytest.raises(UnsupportedOperation, match="'rscd' is given twice"):
        storage.url("a.txt", parameters={"rscd": "inline", "ResponseContentDisposition": "inline"})


def test_connection_string_and_aliases(azurite: Azurite, azure_container: str) -> None:
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint={azurite.endpoint};"
    )
    storage = AzureStorage(
        connection_string=connection, container=azure_container, expiration_secs=30
    )
    name = storage.save("c.txt", ContentFile(b"c"))
    assert storage.open(name).read() == b"c"
    assert storage.options.querystring_expire == 30
    assert ACCOUNT_KEY not in repr(storage) + repr(storage.deconstruct())


def test_settings_fallbacks(azurite: Azurite, azure_container: str) -> None:
    with override_settings(
        AZURE_CONTAINER=azure_container,
        AZURE_ACCOUNT_NAME="devstoreaccount1",
        AZURE_ACCOUNT_KEY=ACCOUNT_KEY,
        AZURE_LOCATION="from-settings",
        AZURE_CUSTOM_DOMAIN="files.example.com",
        AZURE_OVERWRITE_FILES=True,
    ):
        storage = AzureStorage(endpoint=azurite.endpoint)
        storage.save("a.txt", ContentFile(b"1"))
        assert storage.save("a.txt", ContentFile(b"2")) == "a.txt"
        assert storage.open("a.txt").read() == b"2"
        assert storage.driver.head("from-settings/a.txt").size == 1


def test_large_atomic_create_keeps_headers(options: dict[str, Any], azurite: Azurite) -> None:
    storage = AzureStorage(multipart_threshold=5 * 1024 * 1024, **options)
    data = b"z" * (6 * 1024 * 1024)
    first = storage.save("big/file.txt", ContentFile(data))
    second = storage.save("big/file.txt", ContentFile(data))
    assert second != first
    blob = azurite.client().get_blob_client(options["azure_container"], first)
    assert blob.get_blob_properties().content_settings.content_type == "text/plain"
    assert storage.listdir("") == (["big"], [])


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"object_parameters": {"standard_blob_tier": "Cool"}}, "'object_parameters'"),
        ({"azure_container": ""}, "azure_container"),
        ({"containr": "x"}, "'containr'"),
        ({"multipart_concurrency": 0}, "'multipart_concurrency'"),
    ],
)
def test_bad_options_name_themselves(
    options: dict[str, Any], bad: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        AzureStorage(**{**options, **bad}).exists("x")


def test_access_tier(options: dict[str, Any], azurite: Azurite) -> None:
    storage = AzureStorage(object_parameters={"access_tier": "Cool"}, **options)
    name = storage.save("archive/old.bin", ContentFile(b"rarely read"))
    blob = azurite.client().get_blob_client(options["azure_container"], name)
    assert blob.get_blob_properties().blob_tier == "Cool"
    assert storage.open(name).read() == b"rarely read"


# SAS URLs signed here: names, response overrides and custom domains, checked
# against azure-storage-blob's generate_blob_sas and fetched from Azurite.

#: Names whose SAS URLs obstore's signer got wrong (403), and the usual suspects.
AWKWARD_NAMES = [
    "with space.txt",
    "per%cent.txt",
    "hash#tag.txt",
    "café/naïve ünïcode.txt",
    "sub/!'()*&$@=;:+,.txt",
    "a%20b.txt",
]
#: Every response override, by boto3's names, and the header each sets.
OVERRIDES = {
    "ResponseCacheControl": ("Cache-Control", "no-store"),
    "ResponseContentDisposition": ("Content-Disposition", 'attachment; filename="r e;1.txt"'),
    "ResponseContentEncoding": ("Content-Encoding", "identity"),
    "ResponseContentLanguage": ("Content-Language", "fr-CA"),
    "ResponseContentType": ("Content-Type", "text/csv; charset=utf-8"),
}


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _sdk_signature(
    monkeypatch: pytest.MonkeyPatch, container: str, blob: str, url: str, **kwargs: Any
) -> str:
    """Return generate_blob_sas's signature for what ``url`` grants, at its expiry."""
    import azure.storage.blob._shared_access_signature as sdk_sas
    from azure.storage.blob import generate_blob_sas

    from stowage.drivers._azure_auth import SAS_VERSION

    # The SDK writes its own newest version into the string to sign; use ours.
    monkeypatch.setattr(sdk_sas, "X_MS_VERSION", SAS_VERSION)
    query = _query(url)
    assert query["sv"] == SAS_VERSION
    sas = generate_blob_sas(
        "devstoreaccount1",
        container,
        blob,
        permission=query["sp"],
        expiry=query["se"],
        **kwargs,
    )
    return _query(f"x?{sas}")["sig"]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_sas_urls_for_awkward_names_fetch_from_azurite(
    options: dict[str, Any], azurite: Azurite, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = AzureStorage(**options)
    azurite.client().get_blob_client(options["azure_container"], name).upload_blob(b"awkward")
    url = storage.url(name)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"awkward"
    expected = _sdk_signature(
        monkeypatch, options["azure_container"], name, url, account_key=ACCOUNT_KEY
    )
    assert _query(url)["sig"] == expected


def test_sas_upload_url_for_an_awkward_name(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    url = storage.url("up/a b#%é.bin", method="PUT", expire=60)
    request = urllib.request.Request(
        url, data=b"put", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    urllib.request.urlopen(request, timeout=10).close()
    assert storage.open("up/a b#%é.bin").read() == b"put"


def test_sas_response_overrides_are_signed_and_applied(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = AzureStorage(**options)
    storage.save("report.bin", ContentFile(b"1,2"))
    parameters = {name: value for name, (_, value) in OVERRIDES.items()}
    url = storage.url("report.bin", parameters=parameters)
    assert {"rscc", "rscd", "rsce", "rscl", "rsct"} <= set(_query(url))
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"1,2"
        for header, value in OVERRIDES.values():
            assert response.headers[header] == value
    expected = _sdk_signature(
        monkeypatch,
        options["azure_container"],
        "report.bin",
        url,
        account_key=ACCOUNT_KEY,
        cache_control="no-store",
        content_disposition='attachment; filename="r e;1.txt"',
        content_encoding="identity",
        content_language="fr-CA",
        content_type="text/csv; charset=utf-8",
    )
    assert _query(url)["sig"] == expected
    # An override changes the signature: a URL edited to serve other headers is refused.
    tampered = url.replace("rscl=fr-CA", "rscl=en")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403


def test_django_storages_override_names_are_taken(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    storage.save("d.txt", ContentFile(b"d"))
    url = storage.url("d.txt", parameters={"content_disposition": "attachment"})
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Disposition"] == "attachment"


def test_sas_urls_on_a_custom_domain(
    options: dict[str, Any], azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # localhost is the same Azurite under another host name: the URL must work there.
    domain = azurite.endpoint.replace("127.0.0.1", "localhost")
    storage = AzureStorage(custom_domain=domain, **options)
    storage.save("cdn/a b.txt", ContentFile(b"via the domain"))
    url = storage.url("cdn/a b.txt", parameters={"ResponseContentType": "text/x-test"})
    container = options["azure_container"]
    assert url.startswith(f"{domain}/{container}/cdn/a%20b.txt?")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"via the domain"
        assert response.headers["Content-Type"] == "text/x-test"


def test_custom_domain_setting_with_sas_as_django_storages_makes_it(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with override_settings(AZURE_CUSTOM_DOMAIN="files.example.com"):
        storage = AzureStorage(**options)
    url = storage.url("dir/a b.txt", expire=300)
    container = options["azure_container"]
    assert url.startswith(f"https://files.example.com/{container}/dir/a%20b.txt?")
    expected = _sdk_signature(monkeypatch, container, "dir/a b.txt", url, account_key=ACCOUNT_KEY)
    assert _query(url)["sig"] == expected


def test_unsigned_custom_domain_urls_keep_the_container(options: dict[str, Any]) -> None:
    """As django-storages builds them: the domain stands for the account."""
    storage = AzureStorage(custom_domain="media.example.com", querystring_auth=False, **options)
    container = options["azure_container"]
    assert storage.url("a b.txt") == f"https://media.example.com/{container}/a%20b.txt"
