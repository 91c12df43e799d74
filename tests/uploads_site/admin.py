"""The documents in the admin, with direct uploads."""

from django.contrib import admin
from django.db import models

from stowage.forms import DirectUploadField, DirectUploadWidget
from tests.uploads_site.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Upload documents straight to the storage."""

    formfield_overrides = {
        models.FileField: {"form_class": DirectUploadField, "widget": DirectUploadWidget}
    }
