"""An upload view, as a site would have one."""

from django import forms
from django.http import HttpRequest, HttpResponse

from tests.django_project.models import Document


class DocumentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Document
        fields = ["title", "attachment"]


def upload(request: HttpRequest) -> HttpResponse:
    form = DocumentForm(request.POST, request.FILES)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400)
    document = form.save()
    return HttpResponse(document.attachment.name)
