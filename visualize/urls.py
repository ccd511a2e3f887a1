"""Visualize URLs, mounted at ``/visualize/`` on the admin port (the socket is in routing.py)."""

from django.urls import path

from visualize import views

app_name = "visualize"

urlpatterns = [
    path("", views.index, name="index"),
    path("graph", views.graph, name="graph"),
    path("measure", views.measure, name="measure"),
]
