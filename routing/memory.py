"""An in-memory router: a shared table of key -> peers, for unit tests of the layers above."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from routing.router import Peer


class MemoryNetwork:
    """What the DHT would hold: for every key, the peers that advertised it."""

    def __init__(self) -> None:
        self.providers: dict[str, dict[str, Peer]] = {}
        self.dead: set[str] = set()


class MemoryRouter:
    def __init__(self, network: MemoryNetwork, self_peer: Peer, alone_ok: bool = True) -> None:
        self.network = network
        self.self_peer = self_peer
        self.alone_ok = alone_ok
        self.advertised: set[str] = set()

    async def ready(self) -> bool:
        others = {
            p.peer_id
            for peers in self.network.providers.values()
            for p in peers.values()
            if p.peer_id != self.self_peer.peer_id
        }
        return self.alone_ok or bool(others)

    async def resolve(self, key: str, count: int, timeout: float) -> AsyncIterator[Peer]:
        seen = 0
        for peer in list(self.network.providers.get(key, {}).values()):
            if peer.peer_id == self.self_peer.peer_id or peer.peer_id in self.network.dead:
                continue
            yield peer
            seen += 1
            if count and seen >= count:
                return
            await asyncio.sleep(0)

    async def advertise(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.network.providers.setdefault(key, {})[self.self_peer.peer_id] = self.self_peer
            self.advertised.add(key)

    async def withdraw(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.network.providers.get(key, {}).pop(self.self_peer.peer_id, None)
            self.advertised.discard(key)

    async def close(self) -> None:
        await self.withdraw(list(self.advertised))
