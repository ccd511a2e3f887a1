"""Admin port URLs: metrics, visualize page and socket, Django admin. Never /v2."""

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

urlpatterns = [
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    path("visualize/", include("visualize.urls")),
    # daphne serves no files: the visualize page's JS/CSS (vendored from npm at build time, no
    # CDN) and the admin's come from the apps' static folders through the staticfiles finders.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
