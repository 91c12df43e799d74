"""A picture or a file, with a thumbnail made on upload."""

from __future__ import annotations

import io
from typing import Any

from django.core.files.base import ContentFile
from django.db import models


class Item(models.Model):
    """One uploaded picture or file."""

    title = models.CharField(max_length=120)
    image = models.ImageField(
        upload_to="images/", width_field="width", height_field="height", blank=True
    )
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.ImageField(upload_to="thumbnails/", blank=True)
    attachment = models.FileField(upload_to="files/", blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.title

    def make_thumbnail(self, size: int = 240) -> None:
        """Store a JPEG thumbnail of the image beside it, in the same storage."""
        from PIL import Image

        with self.image.open("rb") as handle, Image.open(handle) as picture:
            picture.thumbnail((size, size))
            out = io.BytesIO()
            picture.convert("RGB").save(out, "JPEG", quality=85)
        self.thumbnail.save(f"{self.pk}.jpg", ContentFile(out.getvalue()), save=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        if self.image and not self.thumbnail:
            self.make_thumbnail()
