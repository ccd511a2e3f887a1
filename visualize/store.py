"""The event store: the latest request per key, bounded, with change notification.

``record`` is the registry's listener (see ``registry.events``): it runs on the request path,
so it is O(1), takes one short lock and never raises. Subscribers (the WebSocket feeds) are
told which keys changed and pull what they need from the store themselves.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from registry.events import PullEvent
from visualize.graph import Direction, Edge, GraphJSON, build_graph

logger = logging.getLogger(__name__)

DEFAULT_MAX_LINKS = 2000

ChangeCallback = Callable[[tuple[str, ...]], None]
Unsubscribe = Callable[[], None]


@runtime_checkable
class EventStore(Protocol):
    """What the views, the feed and persistence need from a store."""

    @property
    def version(self) -> int:
        """Bumped on every change; part of the graph ETag."""
        ...

    def record(self, event: PullEvent) -> None: ...

    def get(self, key: str) -> Edge | None: ...

    def edges(self) -> list[Edge]: ...

    def graph(self, direction: Direction = Direction.BOTH) -> GraphJSON: ...

    def subscribe(self, callback: ChangeCallback) -> Unsubscribe: ...

    def clear(self) -> None: ...


class MemoryEventStore:
    """In-memory store keeping at most ``max_links`` keys; the least recently updated go first."""

    def __init__(self, max_links: int = DEFAULT_MAX_LINKS) -> None:
        if max_links < 1:
            raise ValueError("max_links must be at least 1")
        self.max_links = max_links
        self._edges: OrderedDict[str, Edge] = OrderedDict()
        self._lock = threading.Lock()
        self._version = 0
        self._subscribers: tuple[ChangeCallback, ...] = ()
        self.evicted = 0
        self.ignored = 0

    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        return len(self._edges)

    def record(self, event: PullEvent) -> None:
        """Keep ``event`` if it is a GET; never raises into the registry."""
        try:
            if event.method.upper() != "GET":
                self.ignored += 1
                return
            self._store(Edge.from_event(event))
        except Exception:
            logger.exception(
                "visualize: could not record event", extra={"key": getattr(event, "key", None)}
            )

    def _store(self, edge: Edge) -> None:
        with self._lock:
            self._edges[edge.key] = edge
            self._edges.move_to_end(edge.key)
            changed = [edge.key]
            while len(self._edges) > self.max_links:
                old_key, _ = self._edges.popitem(last=False)
                changed.append(old_key)
                self.evicted += 1
            self._version += 1
            subscribers = self._subscribers
        self._notify(subscribers, tuple(changed))

    def _notify(self, subscribers: tuple[ChangeCallback, ...], keys: tuple[str, ...]) -> None:
        for callback in subscribers:
            try:
                callback(keys)
            except Exception:
                logger.exception("visualize: subscriber failed")

    def get(self, key: str) -> Edge | None:
        return self._edges.get(key)

    def edges(self) -> list[Edge]:
        with self._lock:
            return list(self._edges.values())

    def graph(self, direction: Direction = Direction.BOTH) -> GraphJSON:
        return build_graph(self.edges(), direction)

    def snapshot(self, direction: Direction = Direction.BOTH) -> tuple[int, GraphJSON]:
        """The graph and the version it was taken at, consistently."""
        with self._lock:
            version = self._version
            edges = list(self._edges.values())
        return version, build_graph(edges, direction)

    def subscribe(self, callback: ChangeCallback) -> Unsubscribe:
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def clear(self) -> None:
        with self._lock:
            keys = tuple(self._edges)
            self._edges.clear()
            self._version += 1
            subscribers = self._subscribers
        if keys:
            self._notify(subscribers, keys)

    def load(self, events: Iterable[PullEvent]) -> int:
        """Replay ``events`` (oldest first), e.g. from persisted history; returns how many."""
        count = 0
        for event in events:
            if event.method.upper() == "GET":
                self._store(Edge.from_event(event))
                count += 1
        return count


_default: MemoryEventStore | None = None
_default_lock = threading.Lock()


def get_store() -> MemoryEventStore:
    """The process-wide store the registry's events go to (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = MemoryEventStore(_max_links_setting())
    return _default


def set_store(store: MemoryEventStore | None) -> None:
    """Swap the process-wide store (tests); ``None`` recreates it on next use."""
    global _default
    with _default_lock:
        _default = store


def record(event: PullEvent) -> None:
    """The listener registered with ``registry.events``: forwards to the current store."""
    get_store().record(event)


def _max_links_setting() -> int:
    from django.conf import settings

    return int(getattr(settings, "VISUALIZE_MAX_LINKS", DEFAULT_MAX_LINKS))
