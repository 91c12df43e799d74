"""URLs of the direct-upload test site."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

from tests.uploads_site import views

urlpatterns = [
    path("login/", LoginView.as_view(template_name="uploads_site/login.html"), name="login"),
    path("new/", views.new, name="new"),
    path("doc/<int:pk>/", views.document, name="document"),
    path("uploads/", include("stowage.uploads.urls")),
    path("admin/", admin.site.urls),
]
