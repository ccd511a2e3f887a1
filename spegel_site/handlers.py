"""Django ASGI handlers per port: each port has its own URLconf and middleware chain."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler


class PortHandler(ASGIHandler):
    """An ``ASGIHandler`` bound to one URLconf and one middleware list.

    The registry port must never expose admin pages and the admin port must never expose
    ``/v2``: each port resolves only against its own URLconf.
    """

    def __init__(self, urlconf: str, middleware: list[str] | None = None, chunk_size: int = 0):
        self.urlconf = urlconf
        self.middleware = middleware
        if chunk_size:
            # Django splits each streamed part into chunk_size messages (64 KiB by default);
            # large blob parts would cost one ASGI send per 64 KiB.
            self.chunk_size = chunk_size
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        if self.middleware is None:
            super().load_middleware(is_async=is_async)
            return
        saved = settings.MIDDLEWARE
        try:
            settings.MIDDLEWARE = self.middleware
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = saved

    def create_request(self, scope: dict[str, Any], body_file: Any) -> Any:
        request, error_response = super().create_request(scope, body_file)
        if request is not None:
            request.urlconf = self.urlconf
        return request, error_response
