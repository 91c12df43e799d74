"""A document with a file."""

from django.db import models


class Document(models.Model):
    """One uploaded document."""

    title = models.CharField(max_length=100)
    file = models.FileField(upload_to="docs/")

    def __str__(self) -> str:
        return self.title
