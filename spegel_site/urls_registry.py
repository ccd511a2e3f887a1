"""Registry port URLs: the read-only OCI distribution API and probes. Nothing else."""

from django.urls import include, path

from registry import views

urlpatterns = [path("", include("registry.urls"))]

# Errors Django raises before any view runs are answered with the OCI body as well.
handler404 = views.not_found_handler
handler500 = views.server_error_handler
