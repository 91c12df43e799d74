"""URLs of the test project."""

from django.contrib import admin
from django.urls import path

from tests.django_project.views import upload

urlpatterns = [path("upload/", upload), path("admin/", admin.site.urls)]
