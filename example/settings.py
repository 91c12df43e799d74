"""Settings of the demo site: a gallery whose files live in a stowage storage."""

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Where the database and local media go (the tests point it at a temporary directory).
DATA = Path(os.environ.get("STOWAGE_DEMO_DATA", HERE))
SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "stowage",
    "gallery",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA / "media"

# run.py picks the backend and passes its options here; the local driver is the default.
_BACKEND = os.environ.get("STOWAGE_DEMO_BACKEND", "stowage.LocalStorage")
_OPTIONS = json.loads(os.environ.get("STOWAGE_DEMO_OPTIONS", "{}"))
STORAGES = {
    "default": {"BACKEND": _BACKEND, "OPTIONS": _OPTIONS},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The gallery's attachments go straight from the browser to the storage, with a
# progress bar (on S3 in presigned parts, elsewhere in tus chunks to Django).
STOWAGE_DIRECT_UPLOADS = {
    # The demo lets every visitor upload; a real site names a PERMISSION instead.
    "CHECK": "gallery.views.anyone_may_upload",
    "TEMP_DIR": str(DATA / "uploads"),
}
