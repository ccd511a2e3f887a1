"""WebSocket URL patterns (filled in by the visualize feature)."""

websocket_urlpatterns: list = []
