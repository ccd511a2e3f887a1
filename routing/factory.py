"""Build the node's router from its settings (temporary: a router that knows no peers)."""

from __future__ import annotations

from registry.config import SpegelConfig
from routing.memory import MemoryNetwork, MemoryRouter
from routing.router import Peer, Router


async def build_router(config: SpegelConfig) -> Router:
    return MemoryRouter(MemoryNetwork(), Peer("self", "127.0.0.1"))
