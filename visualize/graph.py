"""The graph model of the visualize page: edges, direction filters, JSON shapes and ETags.

Pure functions and values only, so the store, the JSON view and the WebSocket feed agree on
one definition of what a link looks like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

from registry.events import PullEvent

ROOT = "self"


class Direction(StrEnum):
    """Which links a viewer wants: incoming (peer -> self), outgoing (self -> peer) or both."""

    INCOMING = "incoming"
    BOTH = "both"
    OUTGOING = "outgoing"

    def matches(self, edge_direction: str) -> bool:
        return self is Direction.BOTH or self.value == edge_direction


# The seed's ``direction`` parameter was a bool "root is source": true = outgoing.
_ALIASES = {"": Direction.BOTH, "true": Direction.OUTGOING, "false": Direction.INCOMING}


def parse_direction(value: str | None) -> Direction:
    """Parse ``incoming|both|outgoing`` (or the seed's ``true|false|``); raise ``ValueError``."""
    raw = (value or "").strip().lower()
    if raw in _ALIASES:
        return _ALIASES[raw]
    try:
        return Direction(raw)
    except ValueError:
        raise ValueError(
            f"invalid direction {value!r}: expected incoming, both or outgoing"
        ) from None


class NodeJSON(TypedDict):
    id: str


class LinkJSON(TypedDict):
    id: str
    source: str
    target: str
    status: int


class GraphJSON(TypedDict):
    nodes: list[NodeJSON]
    links: list[LinkJSON]


@dataclass(frozen=True, slots=True)
class Edge:
    """The latest request seen for one key (tag reference or digest)."""

    key: str
    peer: str
    direction: str  # "incoming" | "outgoing"
    status: int
    kind: str = "blob"
    registry: str = ""
    bytes: int = 0
    duration: float = 0.0
    time: float = 0.0

    @classmethod
    def from_event(cls, event: PullEvent) -> Edge:
        return cls(
            key=event.key,
            peer=event.peer,
            direction=event.direction,
            status=event.status,
            kind=event.kind,
            registry=event.registry,
            bytes=event.bytes,
            duration=event.duration,
            time=event.time,
        )

    def link(self) -> LinkJSON:
        # Seed semantics: outgoing = we fetched from the peer (self -> peer), incoming = the
        # peer fetched from us (peer -> self).
        if self.direction == "outgoing":
            return {"id": self.key, "source": ROOT, "target": self.peer, "status": self.status}
        return {"id": self.key, "source": self.peer, "target": ROOT, "status": self.status}


def build_graph(edges: Iterable[Edge], direction: Direction = Direction.BOTH) -> GraphJSON:
    """``{nodes, links}`` for the edges matching ``direction``; the root node is always first."""
    nodes: list[NodeJSON] = [{"id": ROOT}]
    seen = {ROOT}
    links: list[LinkJSON] = []
    for edge in edges:
        if not direction.matches(edge.direction):
            continue
        links.append(edge.link())
        if edge.peer not in seen:
            seen.add(edge.peer)
            nodes.append({"id": edge.peer})
    return {"nodes": nodes, "links": links}


def status_class(status: int) -> str:
    """``pending`` (in flight), ``ok`` (2xx) or ``error``: the three colours of the page."""
    if status == 0:
        return "pending"
    if 200 <= status < 300:
        return "ok"
    return "error"


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def etag(direction: Direction, version: int) -> str:
    """Strong ETag of a graph view: FNV-32a of direction and store version, as the seed."""
    return '"' + format(fnv32a(f"{direction.value}{version}".encode()), "08x") + '"'


def counters(graph: GraphJSON) -> dict[str, Any]:
    """The page's counters for one graph view (also handy for tests and logs)."""
    classes = [status_class(link["status"]) for link in graph["links"]]
    return {
        "peers": len(graph["nodes"]) - 1,
        "links": len(classes),
        "ok": classes.count("ok"),
        "errors": classes.count("error"),
        "pending": classes.count("pending"),
    }
