"""List, upload and download, all through the configured storage."""

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from gallery.models import Item


class UploadForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Item
        fields = ["title", "image", "attachment"]


def index(request: HttpRequest) -> HttpResponse:
    """Show every item with its thumbnail and download link."""
    from django.core.files.storage import default_storage

    return render(
        request,
        "gallery/index.html",
        {"items": Item.objects.all(), "form": UploadForm(), "storage": default_storage},
    )


def upload(request: HttpRequest) -> HttpResponse:
    """Store an uploaded picture or file."""
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        form.save()
        return HttpResponseRedirect(reverse("index"))
    return render(
        request, "gallery/index.html", {"items": Item.objects.all(), "form": form}, status=400
    )


def download(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the visitor to the stored file's URL (signed where the backend signs)."""
    item = get_object_or_404(Item, pk=pk)
    field = item.attachment or item.image
    return HttpResponseRedirect(field.storage.url(field.name))
