"""The routing boundary: who holds a key. Four calls, as in the reference's Router."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Peer:
    """A node that holds content. ``host`` is an IP address (v4 or v6, no brackets).

    The registry port is not part of the record: it is the same cluster-wide and taken from
    our own ``--registry-addr``.
    """

    peer_id: str
    host: str

    def url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"


@runtime_checkable
class Router(Protocol):
    async def ready(self) -> bool:
        """True when the router has at least one peer, or is alone by design."""
        ...

    def resolve(self, key: str, count: int, timeout: float) -> AsyncIterator[Peer]:
        """Yield up to ``count`` distinct peers (never self) holding ``key``, each as soon as
        it is known, stopping after ``timeout`` seconds."""
        ...

    async def advertise(self, keys: Sequence[str]) -> None:
        """Announce that this node holds ``keys`` (kept fresh until withdrawn)."""
        ...

    async def withdraw(self, keys: Sequence[str]) -> None:
        """Stop announcing ``keys``."""
        ...

    async def close(self) -> None: ...


def key_multihash(key: str) -> bytes:
    """The DHT key bytes: multihash sha2-256 (0x12 0x20 + digest) of the key string.

    Equal to ``CIDv1(raw, sha2-256(key)).Hash()`` as the Go Spegel computes it.
    """
    return b"\x12\x20" + hashlib.sha256(key.encode()).digest()
