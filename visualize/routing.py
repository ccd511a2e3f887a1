"""WebSocket URL patterns of the admin port (mounted by ``spegel_site.asgi``)."""

from django.urls import path

from visualize.consumers import GraphConsumer
from visualize.origin import SameOriginValidator

websocket_urlpatterns = [
    path("visualize/ws", SameOriginValidator(GraphConsumer.as_asgi()), name="visualize-ws"),
]
