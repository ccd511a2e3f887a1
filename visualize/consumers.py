"""The WebSocket consumer: a thin relay of the store's feed to one browser tab. Read-only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from visualize.feed import GraphFeed
from visualize.graph import parse_direction
from visualize.store import get_store

logger = logging.getLogger(__name__)


class GraphConsumer(AsyncWebsocketConsumer):
    feed: GraphFeed | None = None
    pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if not settings.SPEGEL.visualize_enabled:
            await self.close()
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            direction = parse_direction(query.get("direction", [""])[0])
        except ValueError:
            await self.close()
            return
        await self.accept()
        self.feed = GraphFeed(get_store(), direction)
        await self.send_json(self.feed.snapshot())
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.feed is not None
        while True:
            message = await self.feed.next_message()
            if message is not None:
                await self.send_json(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The only client message: ``{"direction": "incoming|both|outgoing"}``."""
        if self.feed is None:
            return
        try:
            content = json.loads(text_data or "")
            direction = parse_direction(str(content["direction"]))
        except (ValueError, TypeError, KeyError) as exc:
            await self.send_json({"type": "error", "error": f"ignored message: {exc}"})
            return
        await self.send_json(self.feed.set_direction(direction))

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
            self.pump = None
        if self.feed is not None:
            self.feed.close()
            self.feed = None

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))
