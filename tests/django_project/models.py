"""Models of the test project: files and images on stowage storages."""

from django.db import models

from stowage import MemoryStorage

memory_storage = MemoryStorage(namespace="django-project")


class Document(models.Model):
    """A file on the default storage (stowage's local driver)."""

    title = models.CharField(max_length=100)
    attachment = models.FileField(upload_to="documents/%Y/", max_length=100)


class Photo(models.Model):
    """An image whose dimensions Django reads through the storage."""

    image = models.ImageField(upload_to="photos/", width_field="width", height_field="height")
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    backup = models.FileField(storage=memory_storage, upload_to="backup/", blank=True)
