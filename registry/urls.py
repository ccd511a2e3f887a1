from django.urls import path, re_path

from registry import views

urlpatterns = [
    path("v2", views.v2_root),
    path("v2/", views.v2_root),
    re_path(r"^v2/(?P<rest>.+)$", views.distribution),
    path("readyz", views.readyz),
    path("livez", views.livez),
    re_path(r"^(?P<path>.*)$", views.not_found),
]
