"""Two pages saving one file to the default storage: ``direct/`` (the widget) and ``plain/``."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path
from django.utils.html import format_html
from django.views.decorators.csrf import ensure_csrf_cookie

from stowage.forms import DirectUploadField

__all__ = ["anyone_may_upload", "urlpatterns"]

_PAGE = engines["django"].from_string(
    "<!doctype html><title>upload</title>{{ form.media }}"
    '<form method="post" enctype="multipart/form-data">{% csrf_token %}{{ form.as_p }}'
    '<button type="submit" id="save">Save</button></form>'
)


class DirectForm(forms.Form):
    """The file goes from the browser to its name in the storage; the form posts a reference."""

    file = DirectUploadField(max_size=2 * 1024 * 1024 * 1024, upload_to="bench/")


class PlainForm(forms.Form):
    """The file comes in the form post, through Django."""

    file = forms.FileField()


def anyone_may_upload(request: HttpRequest) -> bool:
    """Admit every request (STOWAGE_DIRECT_UPLOADS["CHECK"])."""
    return True


def _form_page(form_class: type[forms.Form]) -> Callable[[HttpRequest], HttpResponse]:
    """Return a view showing ``form_class`` and saving its file to the default storage."""

    @ensure_csrf_cookie
    def view(request: HttpRequest) -> HttpResponse:
        form = form_class(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            name = default_storage.save(f"bench/{upload.name}", upload)
            return HttpResponse(
                format_html('<p id="saved">{} {}</p>', name, default_storage.size(name))
            )
        return HttpResponse(_PAGE.render({"form": form}, request))

    return view


urlpatterns = [
    path("direct/", _form_page(DirectForm)),
    path("plain/", _form_page(PlainForm)),
    path("uploads/", include("stowage.uploads.urls")),
]
