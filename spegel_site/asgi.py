"""ASGI applications: ``registry_application`` (registry port) and ``admin_application``.

The ``registry`` command serves the first with uvicorn (bulk blob throughput) and the second
with daphne (Channels WebSockets, admin). ``application`` is the admin side, for ``daphne``
or ``runserver`` used on their own.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spegel_site.settings")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from registry.access import AccessLogMiddleware  # noqa: E402
from spegel_site.handlers import PortHandler  # noqa: E402
from visualize.routing import websocket_urlpatterns  # noqa: E402

registry_application = AccessLogMiddleware(
    PortHandler(
        settings.REGISTRY_URLCONF, middleware=settings.REGISTRY_MIDDLEWARE, chunk_size=8 << 20
    )
)

admin_application = ProtocolTypeRouter(
    {
        "http": PortHandler(settings.ROOT_URLCONF),
        # Same-origin WebSockets only: the page is served from this port.
        "websocket": OriginValidator(URLRouter(websocket_urlpatterns), settings.WS_ALLOWED_ORIGINS),
    }
)

application = admin_application
