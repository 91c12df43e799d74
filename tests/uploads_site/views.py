"""A form page and a page showing what was saved (its SHA-256 read back through the storage)."""

from __future__ import annotations

import hashlib

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from stowage.forms import DirectUploadField
from tests.uploads_site.models import Document


class DocumentForm(forms.ModelForm):  # type: ignore[type-arg]
    """Title and file; binary or text, at most UPLOADS_SITE_MAX_SIZE bytes (40 MiB)."""

    class Meta:
        model = Document
        fields = ["title", "file"]
        field_classes = {"file": DirectUploadField}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["file"]
        # The limits go to the widget's signed policy too.
        self.fields["file"] = DirectUploadField(
            max_size=settings.UPLOADS_SITE_MAX_SIZE,
            content_types=["application/octet-stream", "text/*"],
            upload_to="docs/",  # the model field's: the upload completes at its name
            max_length=field.max_length,  # type: ignore[attr-defined]
        )


@login_required
def new(request: HttpRequest) -> HttpResponse:
    """Show and take the form."""
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        document = form.save()
        return redirect("document", pk=document.pk)
    return render(request, "uploads_site/new.html", {"form": form})


@login_required
def document(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the saved file's name, size and SHA-256 as read back from the storage."""
    doc = get_object_or_404(Document, pk=pk)
    digest = hashlib.sha256()
    with doc.file.open("rb") as handle:
        for chunk in handle.chunks():
            digest.update(chunk)
    return render(
        request,
        "uploads_site/document.html",
        {"doc": doc, "size": doc.file.size, "sha256": digest.hexdigest()},
    )
