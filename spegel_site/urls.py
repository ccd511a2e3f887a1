"""Admin port URLs: metrics, visualize page and socket, Django admin. Never /v2."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    path("visualize/", include("visualize.urls")),
]
