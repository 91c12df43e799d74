"""Route the direct-upload views: ``path("uploads/", include("stowage.uploads.urls"))``."""

from django.urls import path

from stowage.uploads import views

__all__ = ["app_name", "urlpatterns"]

app_name = "stowage_uploads"

urlpatterns = [
    path("", views.create, name="create"),
    path("sign/", views.sign_parts, name="sign"),
    path("status/", views.status, name="status"),
    path("complete/", views.complete, name="complete"),
    path("abort/", views.abort, name="abort"),
    path("tus/", views.tus_create, name="tus-create"),
    path("tus/<str:token>", views.tus_upload, name="tus-upload"),
]
