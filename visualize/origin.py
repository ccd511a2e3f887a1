"""Same-origin check for WebSockets: the ``Origin`` must name the host the page came from.

Browsers send ``Origin`` on every WebSocket handshake and page scripts cannot forge it, so a
page on another site cannot open our socket (cross-site WebSocket hijacking). The admin port is
reached under many names (pod IP, node IP, port-forward), so the check compares the ``Origin``
with the request's own ``Host`` instead of a fixed list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _host_port(netloc: str, scheme: str) -> str:
    netloc = netloc.strip().lower()
    if netloc.endswith("]") or ":" not in netloc.rsplit("]", 1)[-1]:
        netloc = f"{netloc}:{_DEFAULT_PORTS.get(scheme, '')}"
    return netloc


def is_same_origin(scope: dict[str, Any]) -> bool:
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    if not origin or not host:
        return False
    parsed = urlsplit(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.username:
        return False
    return _host_port(parsed.netloc, parsed.scheme) == _host_port(host, parsed.scheme)


class SameOriginValidator:
    """ASGI middleware: deny WebSocket handshakes whose Origin is not the Host they came to."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not is_same_origin(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
