"""stowage behind Django's models, forms and migrations."""

import pickle

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.migrations.writer import MigrationWriter
from django.test import Client

from stowage import LocalStorage
from stowage.testing.storage_contract import make_png
from tests.django_project.models import Document, Photo

pytestmark = pytest.mark.django_db


def test_default_storage_is_stowage_local() -> None:
    assert isinstance(default_storage, LocalStorage)


def test_file_field_save_read_delete() -> None:
    document = Document(title="report")
    document.attachment.save("report.txt", ContentFile(b"quarterly"), save=True)
    name = document.attachment.name
    assert name.startswith("documents/")
    fresh = Document.objects.get(pk=document.pk)
    with fresh.attachment.open("rb") as handle:
        assert handle.read() == b"quarterly"
    assert fresh.attachment.size == 9
    assert fresh.attachment.url == f"/media/{name}"
    fresh.delete()
    assert default_storage.exists(name), "deleting the row must leave the file"
    fresh.attachment.delete(save=False)
    assert not default_storage.exists(name)


def test_same_upload_twice_keeps_both_files() -> None:
    first = Document.objects.create(title="a", attachment=ContentFile(b"one", name="same.txt"))
    second = Document.objects.create(title="b", attachment=ContentFile(b"two", name="same.txt"))
    assert first.attachment.name != second.attachment.name
    assert first.attachment.read() == b"one"
    assert second.attachment.read() == b"two"


def test_field_file_open_for_writing() -> None:
    document = Document.objects.create(title="w", attachment=ContentFile(b"old", name="w.txt"))
    document.attachment.open("wb")
    document.attachment.write(b"new content")
    document.attachment.close()
    assert default_storage.open(document.attachment.name).read() == b"new content"


def test_image_field_dimensions() -> None:
    photo = Photo()
    photo.image.save("p.png", ContentFile(make_png(120, 80)), save=True)
    fresh = Photo.objects.get(pk=photo.pk)
    assert (fresh.width, fresh.height) == (120, 80)
    assert (fresh.image.width, fresh.image.height) == (120, 80)


def test_field_file_survives_pickling() -> None:
    photo = Photo()
    photo.image.save("p.png", ContentFile(make_png(4, 4)), save=False)
    photo.backup.save("b.bin", ContentFile(b"backup"), save=True)
    clone = pickle.loads(pickle.dumps(photo))
    assert clone.backup.read() == b"backup"
    assert clone.image.width == 4


def test_upload_through_a_form() -> None:
    upload = SimpleUploadedFile("Quarterly Report (final).pdf", b"%PDF-1.4 data")
    response = Client().post("/upload/", {"title": "q", "attachment": upload})
    assert response.status_code == 200, response.content
    name = response.content.decode()
    assert name.endswith("Quarterly_Report_final.pdf")
    assert default_storage.open(name).read() == b"%PDF-1.4 data"


def test_upload_of_an_unsafe_name_is_cleaned() -> None:
    upload = SimpleUploadedFile("../../etc/passwd", b"root")
    response = Client().post("/upload/", {"title": "x", "attachment": upload})
    assert response.status_code == 200
    name = response.content.decode()
    assert name.startswith("documents/")
    assert ".." not in name


def test_migrations_serialize_the_storage() -> None:
    field = Photo._meta.get_field("backup")
    _, _, _, kwargs = field.deconstruct()
    source, _imports = MigrationWriter.serialize(kwargs["storage"])
    assert "stowage.backends.MemoryStorage" in source
    assert "namespace='django-project'" in source
