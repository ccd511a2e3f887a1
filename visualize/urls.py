"""Visualize page URLs (filled in by the visualize feature)."""

urlpatterns: list = []
