"""A per-socket view of the store: a snapshot, then coalesced updates.

The store calls ``_on_change`` from whatever thread recorded the event; the feed collects the
changed keys and wakes its event loop at most once per burst. ``next_message`` then waits until
``interval`` has passed since the previous push, so a burst of events becomes one message.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from visualize.graph import Direction, LinkJSON
from visualize.store import MemoryEventStore

DEFAULT_INTERVAL = 0.1
# More changed keys than this between two pushes: send a fresh snapshot instead of a diff.
RESYNC_THRESHOLD = 500


class GraphFeed:
    def __init__(
        self,
        store: MemoryEventStore,
        direction: Direction = Direction.BOTH,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.store = store
        self.direction = direction
        self.interval = interval
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._resync = False
        self._scheduled = False
        self._last_push = 0.0
        self._unsubscribe = store.subscribe(self._on_change)

    def close(self) -> None:
        self._unsubscribe()

    def _on_change(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            if not self._resync:
                self._changed.update(keys)
                if len(self._changed) > RESYNC_THRESHOLD:
                    self._resync = True
                    self._changed.clear()
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the socket's loop is gone; nothing to wake
            pass

    def snapshot(self) -> dict[str, Any]:
        """The first message, and the answer to a direction change."""
        with self._lock:
            self._changed.clear()
            self._resync = False
        version, graph = self.store.snapshot(self.direction)
        self._last_push = self._loop.time()
        return {
            "type": "snapshot",
            "direction": self.direction.value,
            "version": version,
            **graph,
        }

    def set_direction(self, direction: Direction) -> dict[str, Any]:
        self.direction = direction
        return self.snapshot()

    async def next_message(self) -> dict[str, Any] | None:
        """Wait for changes; ``None`` when a snapshot already covered them."""
        await self._wake.wait()
        delay = self._last_push + self.interval - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        with self._lock:
            keys, self._changed = self._changed, set()
            resync, self._resync = self._resync, False
            self._scheduled = False
            self._wake.clear()
        if resync:
            return self.snapshot()
        if not keys:
            return None
        upserts: list[LinkJSON] = []
        removed: list[str] = []
        for key in sorted(keys):
            edge = self.store.get(key)
            if edge is not None and self.direction.matches(edge.direction):
                upserts.append(edge.link())
            else:
                removed.append(key)
        self._last_push = self._loop.time()
        return {
            "type": "update",
            "direction": self.direction.value,
            "version": self.store.version,
            "links": upserts,
            "removed": removed,
        }
