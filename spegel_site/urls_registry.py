"""Registry port URLs: the read-only OCI distribution API and probes. Nothing else."""

from django.urls import include, path

urlpatterns = [path("", include("registry.urls"))]
