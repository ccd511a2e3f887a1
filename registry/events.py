"""The one small interface through which the registry reports pulls to whoever listens.

The visualize app (and metrics) register listeners; the registry never imports them.
Listeners are called synchronously on the request path and must be cheap and never raise:
a failing listener is logged and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

Direction = Literal["incoming", "outgoing"]
Kind = Literal["manifest", "blob"]
NOT_FOUND_PEER = "Not Found"


@dataclass(frozen=True)
class PullEvent:
    """One GET (or HEAD) handled by the registry.

    ``incoming``: a peer fetched from us (``peer`` is its address). ``outgoing``: we fetched
    from ``peer`` on behalf of our containerd, or found nobody (``peer`` = ``Not Found``).
    ``status`` 0 means still in flight.
    """

    direction: Direction
    peer: str
    key: str
    kind: Kind
    registry: str
    method: str
    status: int
    bytes: int = 0
    duration: float = 0.0
    time: float = field(default_factory=time.time)


Listener = Callable[[PullEvent], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def publish(event: PullEvent) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # a listener must never fail a registry request
            logger.exception("event listener failed", extra={"listener": repr(listener)})
