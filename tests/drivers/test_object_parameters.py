"""django-storages' get_object_parameters hook on S3 and Azure, checked with their own clients."""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile

from stowage import AzureStorage, S3Storage
from tests.servers.azurite import Azurite
from tests.servers.moto import MotoServer


def _attachment(name: str) -> str:
    return f'attachment; filename="{name.rsplit("/", 1)[-1]}"'


class PerFileS3(S3Storage):
    """A project's storage giving each file its own download name."""

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params = super().get_object_parameters(name)
        params["ContentDisposition"] = _attachment(name)
        return params


class PerFileAzure(AzureStorage):
    """The same, in Azure's parameter names."""

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        params = super().get_object_parameters(name)
        params["content_disposition"] = _attachment(name)
        return params


def test_s3_hook_sets_headers_per_file(s3_server: MotoServer, s3_bucket: str) -> None:
    storage = PerFileS3(
        object_parameters={"CacheControl": "max-age=60"}, **s3_server.options(s3_bucket)
    )
    storage.save("docs/report.pdf", ContentFile(b"%PDF"))
    with storage.open("docs/notes.txt", "wb") as handle:
        handle.write(b"notes")
    client = s3_server.boto3()
    report = client.head_object(Bucket=s3_bucket, Key="docs/report.pdf")
    assert report["ContentDisposition"] == 'attachment; filename="report.pdf"'
    assert report["CacheControl"] == "max-age=60"
    notes = client.head_object(Bucket=s3_bucket, Key="docs/notes.txt")
    assert notes["ContentDisposition"] == 'attachment; filename="notes.txt"'


def test_azure_hook_sets_headers_per_file(azurite: Azurite, azure_container: str) -> None:
    storage = PerFileAzure(**azurite.options(azure_container))
    storage.save("docs/report.pdf", ContentFile(b"%PDF"))
    blob = azurite.client().get_blob_client(azure_container, "docs/report.pdf")
    settings = blob.get_blob_properties().content_settings
    assert settings.content_disposition == 'attachment; filename="report.pdf"'
