"""The test site's app."""

from django.apps import AppConfig


class UploadsSiteConfig(AppConfig):
    """Name the app ``uploads_site``."""

    name = "tests.uploads_site"
    label = "uploads_site"
