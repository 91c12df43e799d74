"""Settings of the direct-upload test site; the storage comes from the environment.

``STOWAGE_UPLOADS_BACKEND`` and ``STOWAGE_UPLOADS_OPTIONS`` (JSON) choose the
default storage; ``STOWAGE_UPLOADS_DATA`` is where the database and the tus
staging folder go; ``STOWAGE_UPLOADS_MAX_SIZE`` is the form's limit in bytes
(40 MiB unless told).
"""

import json
import os
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("STOWAGE_UPLOADS_DATA") or tempfile.mkdtemp(prefix="uploads-site-"))
SECRET_KEY = "uploads-site-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.uploads_site.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "stowage",
    "tests.uploads_site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
MEDIA_ROOT = DATA / "media"
LOGIN_URL = "/login/"
STORAGES = {
    "default": {
        "BACKEND": os.environ.get("STOWAGE_UPLOADS_BACKEND", "stowage.MemoryStorage"),
        "OPTIONS": json.loads(os.environ.get("STOWAGE_UPLOADS_OPTIONS", "{}")),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
#: The largest file the document form takes.
DOCUMENT_MAX_SIZE = int(os.environ.get("STOWAGE_UPLOADS_MAX_SIZE") or 40 * 1024 * 1024)
STOWAGE_DIRECT_UPLOADS = {
    "PERMISSION": "uploads_site.add_document",
    "PART_SIZE": 5 * 1024 * 1024,
    "CHUNK_SIZE": 1024 * 1024,
    "TEMP_DIR": str(DATA / "tus"),
}
