"""Register stowage with Django: its system checks run with ``manage.py check``."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

__all__ = ["StowageConfig"]


class StowageConfig(AppConfig):
    """The stowage app: add ``"stowage"`` to INSTALLED_APPS to get its checks."""

    name = "stowage"
    label = "stowage"
    verbose_name = "stowage"

    def ready(self) -> None:
        """Register the storage checks (registering twice is harmless: it is a set)."""
        from stowage import checks as stowage_checks
        from stowage.exists_listing_check import check_exists_listing

        checks.register(stowage_checks.check_storage_options, checks.Tags.files)
        checks.register(stowage_checks.check_storage_security, checks.Tags.security)
        checks.register(stowage_checks.check_static_urls, checks.Tags.staticfiles)
        checks.register(
            stowage_checks.check_legacy_storage_settings, checks.Tags.files, checks.Tags.staticfiles
        )
        checks.register(stowage_checks.check_conditional_writes, checks.Tags.files)
        checks.register(check_exists_listing, checks.Tags.files)
        checks.register(stowage_checks.check_django_storages_settings, checks.Tags.files)
        checks.register(stowage_checks.check_class_attributes, checks.Tags.files)
        # It asks each service for its CORS rules: at deployment, not at every runserver.
        checks.register(stowage_checks.check_upload_cors, checks.Tags.security, deploy=True)
