"""ASGI middleware for the registry port: one JSON access-log line and HTTP metrics per request.

It wraps ``send`` to see the status and count body bytes, so streamed blobs are measured to
their real end. Handler labels are fixed patterns (``/v2/*``, ``/readyz``, ``/livez``,
``other``): no label value ever comes from the client.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from registry import metrics

logger = logging.getLogger("registry.access")

Scope = dict[str, Any]


def handler_label(path: str) -> str:
    if path == "/v2" or path.startswith("/v2/"):
        return "/v2/*"
    if path in ("/readyz", "/livez"):
        return path
    return "other"


class AccessLogMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        path = scope.get("path", "")
        method = scope.get("method", "")
        handler = handler_label(path)
        state = {"status": 0, "bytes": 0, "length": -1}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-length" and value.isdigit():
                        state["length"] = int(value)
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        inflight = metrics.http_requests_inflight.labels(handler)
        inflight.inc()
        error = ""
        try:
            await self.app(scope, receive, counting_send)
        except BaseException as err:
            error = type(err).__name__
            raise
        finally:
            inflight.dec()
            latency = time.monotonic() - start
            code = str(state["status"] or 499)
            metrics.http_request_duration.labels(handler, method, code).observe(latency)
            metrics.http_response_size.labels(handler, method, code).observe(state["bytes"])
            if handler not in ("/readyz", "/livez") or state["status"] >= 400:
                client = scope.get("client") or ("", 0)
                status = state["status"]
                # A 404 is the normal "nobody has it" answer that sends containerd upstream.
                level = (
                    logging.INFO
                    if 0 < status < 400 or status == 404
                    else logging.ERROR
                    if status >= 500
                    else logging.WARNING
                )
                cut_short = (
                    method == "GET" and state["length"] >= 0 and state["bytes"] < state["length"]
                )
                logger.log(
                    level,
                    "request",
                    extra={
                        "path": path,
                        "status": state["status"],
                        "method": method,
                        "latency": round(latency, 6),
                        "bytes": state["bytes"],
                        "ip": client[0],
                        "handler": handler,
                        **({"error": error} if error else {}),
                        **(
                            {"aborted": True, "expected_bytes": state["length"]}
                            if cut_short
                            else {}
                        ),
                    },
                )
