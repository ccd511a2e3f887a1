"""Test-only ASGI app: the admin port plus ``POST /__test__/event`` that publishes a PullEvent.

Used by the browser test to make events happen inside the daphne subprocess. It is never part
of the product: production serves ``spegel_site.asgi.admin_application``, which has no such path.
"""

from __future__ import annotations

import json
from typing import Any

from registry.events import PullEvent, publish
from spegel_site.asgi import admin_application

EVENT_PATH = "/__test__/event"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == EVENT_PATH and scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        publish(PullEvent(**json.loads(body)))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await admin_application(scope, receive, send)
