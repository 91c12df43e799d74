"""List, upload and download, all through the configured storage; two views are async."""

from collections.abc import AsyncIterator
from typing import Any

from django import forms
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from gallery.models import Item
from stowage.forms import DirectUploadField


class UploadForm(forms.ModelForm):  # type: ignore[type-arg]
    """A picture, posted with the form, or a file of any size, sent straight to the storage."""

    class Meta:
        model = Item
        fields = ["title", "image", "attachment"]
        field_classes = {"attachment": DirectUploadField}


def anyone_may_upload(request: HttpRequest) -> bool:
    """Let every visitor of the demo upload directly (STOWAGE_DIRECT_UPLOADS["CHECK"])."""
    return True


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


def serve_stored(request: HttpRequest, path: str) -> FileResponse:
    """Serve a stored file through Django, for backends with no HTTP URL of their own (SFTP)."""
    from django.core.files.storage import default_storage

    try:
        handle = default_storage.open(path, "rb")
    except FileNotFoundError:
        raise Http404(path) from None
    return FileResponse(handle, filename=path.rsplit("/", 1)[-1])


async def stream(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Stream a stored file through Django without blocking the event loop."""
    item = await Item.objects.aget(pk=pk)
    field = item.attachment or item.image
    storage: Any = field.storage

    async def chunks() -> AsyncIterator[bytes]:
        async with storage.aopen(field.name, "rb") as handle:
            async for chunk in handle:
                yield chunk

    response = StreamingHttpResponse(chunks(), content_type="application/octet-stream")
    response["Content-Length"] = str(await storage.asize(field.name))
    return response


@csrf_exempt
async def api_upload(request: HttpRequest) -> JsonResponse:
    """Store the uploaded "file" with the async API and say where it went."""
    from django.core.files.storage import default_storage

    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "send a multipart field named 'file'"}, status=400)
    storage: Any = default_storage
    name = await storage.asave(f"api/{upload.name}", upload)
    return JsonResponse({"name": name, "size": await storage.asize(name)}, status=201)
