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


def test_blocks_grow_to_stay_within_the_block_limit(options: dict[str, Any]) -> None:
    driver = AzureDriver(AzureOptions(**options))
    mib, tib = 1024 * 1024, 1024**4
    assert driver.part_size(1024 * mib) == 8 * mib
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


def test_response_overrides_are_refused_clearly(options: dict[str, Any]) -> None:
    storage = AzureStorage(**options)
    with pytest.raises(UnsupportedOperation, match="response overrides"):
        storage.url("a.txt", parameters={"ResponseContentDisposition": "attachment"})


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
