"""Settings of the uploads benchmark's site; the storage comes from the environment.

``STOWAGE_BENCH_OPTIONS`` (JSON) are the S3 storage's options and
``STOWAGE_BENCH_TEMP`` the folder of Django's own upload temporary files.
The site needs no database: its forms save straight through the storage.
"""

import json
import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "bench.upload_site.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "stowage",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
STATIC_URL = "/static/"
STORAGES = {
    "default": {
        "BACKEND": "stowage.S3Storage",
        "OPTIONS": json.loads(os.environ.get("STOWAGE_BENCH_OPTIONS", "{}")),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_TEMP_DIR = os.environ.get("STOWAGE_BENCH_TEMP") or None
STOWAGE_DIRECT_UPLOADS = {
    # Only the benchmark's own browser reaches this loopback site.
    "CHECK": "bench.upload_site.urls.anyone_may_upload",
    "MAX_SIZE": 2 * 1024 * 1024 * 1024,
}
