"""URLs of the demo site."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from gallery import views

urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("download/<int:pk>/", views.download, name="download"),
    path("stream/<int:pk>/", views.stream, name="stream"),
    path("api/upload/", views.api_upload, name="api-upload"),
    # The direct-upload views the attachment's widget talks to.
    path("uploads/", include("stowage.uploads.urls")),
    # Backends without HTTP URLs of their own (SFTP) set base_url to this view.
    re_path(r"^files/(?P<path>.+)$", views.serve_stored, name="stored-file"),
    path("admin/", admin.site.urls),
    # Local files are served by Django in the demo; remote backends give their own URLs.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
