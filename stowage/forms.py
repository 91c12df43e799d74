"""Offer a form field whose browser uploads go straight to the storage.

``DirectUploadField`` is a ``forms.FileField``: with JavaScript its widget
sends the file to the service (see :mod:`stowage.uploads`) and the form
submits a signed reference; without JavaScript it is a normal file input.
Use it in a ModelForm or the admin for a model's ``FileField``::

    class DocumentForm(forms.ModelForm):
        class Meta:
            model = Document
            fields = ["title", "file"]
            field_classes = {"file": DirectUploadField}
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from stowage.exceptions import ConfigurationError
from stowage.uploads.config import upload_settings
from stowage.uploads.sessions import RefusedUpload
from stowage.uploads.staged import StagedUpload, load_staged
from stowage.uploads.views import sign_policy

__all__ = ["DirectUploadField", "DirectUploadWidget", "StagedValue"]

#: What the hidden input's name adds to the field's.
STAGED_SUFFIX = "-staged"


class StagedValue(str):
    """A submitted reference to a staged upload, not yet verified."""

    __slots__ = ()


class DirectUploadWidget(forms.ClearableFileInput):
    """Render a file input that the script upgrades to a direct upload with a progress bar."""

    template_name = "django/forms/widgets/clearable_file_input.html"

    class Media:
        js = ["stowage/direct-upload.js"]
        css = {"all": ["stowage/direct-upload.css"]}

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.storage_alias = "default"
        self.max_size = upload_settings().MAX_SIZE
        self.content_types: list[str] = []
        self.upload_to: str | None = None

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        """Render the file input inside a box carrying the endpoint and the signed policy."""
        try:
            endpoint = reverse("stowage_uploads:create")
        except NoReverseMatch as exc:
            raise ConfigurationError(
                "DirectUploadWidget needs the upload views: add "
                'path("uploads/", include("stowage.uploads.urls")) to your URLconf.'
            ) from exc
        box = {
            "class": "stowage-upload",
            "data-stowage-upload": "",
            "data-endpoint": endpoint,
            "data-policy": sign_policy(
                self.storage_alias, self.max_size, self.content_types, self.upload_to
            ),
            "data-max-size": str(self.max_size),
        }
        # A form shown again (another field's error) keeps the finished upload.
        staged = str(value) if isinstance(value, StagedValue) else ""
        shown = None if isinstance(value, StagedValue) else value
        return format_html(
            '<div{}>{}<input type="hidden" name="{}" value="{}"></div>',
            flatatt(box),
            super().render(name, shown, attrs, renderer),
            name + STAGED_SUFFIX,
            staged,
        )

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        """Return the staged reference when the script uploaded, else the posted file."""
        staged = data.get(name + STAGED_SUFFIX)
        if staged:
            return StagedValue(staged)
        return super().value_from_datadict(data, files, name)

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        """Tell Django the field is absent only when neither a file nor a reference came."""
        return not data.get(name + STAGED_SUFFIX) and super().value_omitted_from_data(
            data, files, name
        )


class DirectUploadField(forms.FileField):
    """Take a file uploaded straight to the storage, or posted normally without JavaScript.

    ``storage`` is the alias in ``settings.STORAGES`` the upload is staged
    in: the storage of the model field. ``max_size`` (bytes) and
    ``content_types`` (patterns like ``"image/*"``) bound both paths.

    ``upload_to`` repeats the model field's own ``upload_to`` (a string,
    such as ``"documents/%Y/"``). With it the upload completes at the name
    the model will save, reserved when the upload starts, and saving the
    form copies nothing, where the storage can (S3 with conditional
    writes). Without it, or when the model saves another name, the upload
    is staged and copied to its name on the service when the form is
    saved.
    """

    widget = DirectUploadWidget
    default_error_messages = {
        **forms.FileField.default_error_messages,
        "too_large": "The file is too large: %(size)s bytes, the limit is %(limit)s bytes.",
        "bad_type": "Files of type %(type)s are not allowed here.",
        "staged": "%(reason)s",
    }

    def __init__(
        self,
        *,
        storage: str = "default",
        max_size: int | None = None,
        content_types: list[str] | None = None,
        upload_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if upload_to is not None and not isinstance(upload_to, str):
            raise ConfigurationError(
                "DirectUploadField's upload_to must be a string, the model field's folder "
                "(a strftime pattern): the name is taken before the form is submitted, "
                "with no model instance to call a function with. Leave it out for a "
                "callable upload_to; the upload is then copied to its name on save."
            )
        super().__init__(**kwargs)
        self.upload_to = upload_to
        self.storage_alias = storage
        self.max_size = max_size if max_size is not None else upload_settings().MAX_SIZE
        self.content_types = list(content_types or [])
        if isinstance(self.widget, DirectUploadWidget):
            self.widget.storage_alias = storage
            self.widget.max_size = self.max_size
            self.widget.content_types = self.content_types
            self.widget.upload_to = upload_to

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Keep a submitted reference when the form is shown again, else the initial file."""
        if isinstance(data, StagedValue):
            return data
        return super().bound_data(data, initial)

    def to_python(self, data: Any) -> Any:
        """Verify a staged reference (HEAD), or check a posted file's size and type."""
        if isinstance(data, StagedValue):
            try:
                staged = load_staged(str(data), expected_alias=self.storage_alias)
            except RefusedUpload as exc:
                raise ValidationError(
                    self.error_messages["staged"], code="staged", params={"reason": str(exc)}
                ) from exc
            if staged.size > self.max_size:
                raise ValidationError(
                    self.error_messages["too_large"],
                    code="too_large",
                    params={"size": staged.size, "limit": self.max_size},
                )
            return staged
        upload = super().to_python(data)
        if upload is not None and not isinstance(upload, StagedUpload):
            if upload.size > self.max_size:
                raise ValidationError(
                    self.error_messages["too_large"],
                    code="too_large",
                    params={"size": upload.size, "limit": self.max_size},
                )
            from fnmatch import fnmatchcase

            content_type = getattr(upload, "content_type", None) or "application/octet-stream"
            if self.content_types and not any(
                fnmatchcase(content_type, p) for p in self.content_types
            ):
                raise ValidationError(
                    self.error_messages["bad_type"], code="bad_type", params={"type": content_type}
                )
        return upload
