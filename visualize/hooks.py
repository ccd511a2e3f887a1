"""What the measure page needs from the rest of the node, injected at start.

The ``registry`` command wires them once the router and registry port are up::

    async def resolve(key: str) -> list[tuple[str, float]]:
        # every peer found for ``key`` within the lookup budget, with the seconds it took
        ...

    visualize.hooks.configure_measure(resolve=resolve, registry_url="http://127.0.0.1:5000")

or, with the node's router, ``configure_measure(router_resolver(router), registry_url)``.

Until then the measure page says it is not available.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

PeerTiming = tuple[str, float]
Resolver = Callable[[str], Awaitable[Sequence[PeerTiming]] | Sequence[PeerTiming]]


@dataclass(frozen=True)
class MeasureHooks:
    resolve: Resolver | None = None
    registry_url: str = ""

    @property
    def ready(self) -> bool:
        return self.resolve is not None and bool(self.registry_url)


_hooks = MeasureHooks()


def configure_measure(resolve: Resolver | None, registry_url: str) -> None:
    """Set the DHT lookup (sync or async) and the local registry's base URL."""
    global _hooks
    _hooks = MeasureHooks(resolve=resolve, registry_url=registry_url.rstrip("/"))


def measure_hooks() -> MeasureHooks:
    return _hooks


def router_resolver(router: Any, timeout: float = 1.0, count: int = 0) -> Resolver:
    """Adapt a ``routing.router.Router`` into the measure page's ``resolve``.

    Each peer is reported with the seconds from the start of the lookup until it was found,
    and shown by its host address (the registry port is the same cluster-wide).
    """

    async def resolve(key: str) -> list[PeerTiming]:
        start = time.monotonic()
        found: list[PeerTiming] = []
        async for peer in router.resolve(key, count, timeout):
            found.append((str(getattr(peer, "host", peer)), time.monotonic() - start))
        return found

    return resolve
