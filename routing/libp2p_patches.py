"""Every change we make to py-libp2p's private internals, in one place (LIBP2P.md section 7).

py-libp2p 0.8.1 hard-codes things Spegel needs different: the Kademlia protocol id, the
provider-record lifetime, an ADD_PROVIDER rate limit of 10 messages per 10 s per peer and a cap
of 12 concurrent inbound DHT streams (both drop records silently). Each function here checks
that the attribute it changes exists with the expected type and raises ``LibraryShapeError``
otherwise, so an upgrade that moves things fails at start instead of misbehaving quietly.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

import trio

SUPPORTED_VERSION = "0.8.1"
SPEGEL_PROTOCOL_ID = "/spegel/kad/1.0.0"
# The modules that import PROTOCOL_ID by value (routing_table reads it from common lazily).
PROTOCOL_ID_MODULES = (
    "libp2p.kad_dht.common",
    "libp2p.kad_dht.kad_dht",
    "libp2p.kad_dht.peer_routing",
    "libp2p.kad_dht.provider_store",
    "libp2p.kad_dht.value_store",
)
NOISY_LOGGERS = ("libp2p",)


class LibraryShapeError(RuntimeError):
    """py-libp2p no longer has the shape these patches were written for."""


def _require(owner: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    where = getattr(owner, "__name__", type(owner).__name__)
    if not hasattr(owner, name):
        raise LibraryShapeError(f"py-libp2p changed: {where}.{name} is gone")
    value = getattr(owner, name)
    if not isinstance(value, kind):
        raise LibraryShapeError(
            f"py-libp2p changed: {where}.{name} is {type(value).__name__}, expected {kind}"
        )
    return value


def check_version() -> str:
    from importlib.metadata import version

    found = version("libp2p")
    if found != SUPPORTED_VERSION:
        raise LibraryShapeError(
            f"libp2p {found} installed; routing.libp2p_patches was written for {SUPPORTED_VERSION}"
        )
    return found


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def set_protocol_id(protocol_id: str = SPEGEL_PROTOCOL_ID) -> None:
    """Replace ``/ipfs/kad/1.0.0`` (the ``protocol_prefix`` argument is ignored upstream)."""
    from libp2p.custom_types import TProtocol

    for name in PROTOCOL_ID_MODULES:
        module = _module(name)
        _require(module, "PROTOCOL_ID", str)
        module.PROTOCOL_ID = TProtocol(protocol_id)  # type: ignore[attr-defined]


def set_record_ttl(ttl: float, republish: float | None = None) -> None:
    """Provider records expire after ``ttl`` seconds (read at call time by the store).

    Republishing is done by our own loop (routing.node), so the library's republish interval is
    pushed beyond the TTL to keep it from sending a second copy of everything.
    """
    store = _module("libp2p.kad_dht.provider_store")
    _require(store, "PROVIDER_RECORD_EXPIRATION_INTERVAL", (int, float))
    _require(store, "PROVIDER_RECORD_REPUBLISH_INTERVAL", (int, float))
    store.PROVIDER_RECORD_EXPIRATION_INTERVAL = ttl  # type: ignore[attr-defined]
    store.PROVIDER_RECORD_REPUBLISH_INTERVAL = (  # type: ignore[attr-defined]
        republish if republish is not None else ttl * 1000
    )


def configure_dht(dht: Any, *, provider_rate_max: int, inbound_streams: int) -> None:
    """Raise the per-instance limits that silently drop ADD_PROVIDER messages and streams."""
    _require(dht, "_provider_rate_max", int)
    _require(dht, "_provider_rate_window", (int, float))
    _require(dht, "_inbound_limiter", trio.CapacityLimiter)
    dht._provider_rate_max = provider_rate_max
    dht._inbound_limiter = trio.CapacityLimiter(inbound_streams)


class BufferedDHTStream:
    """An inbound DHT stream with cheaper framing, for the library's server handler.

    py-libp2p reads every varint length prefix one byte at a time (each a trip through yamux
    and noise) and writes each answer as two messages, prefix then body (two yamux frames, two
    noise encryptions). Reads here are served from bulk reads, and a prefix is held back and
    sent together with the body that always follows it. Everything else passes through.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._rbuf = b""
        self._pos = 0
        self._prefix = b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read(self, n: int | None = None) -> bytes:
        if self._pos >= len(self._rbuf):
            data = await self._inner.read(READ_AHEAD if n is None else max(n, READ_AHEAD))
            if not data:
                return data
            self._rbuf, self._pos = bytes(data), 0
        end = len(self._rbuf) if n is None else min(len(self._rbuf), self._pos + n)
        out = self._rbuf[self._pos : end]
        self._pos = end
        return out

    async def write(self, data: bytes) -> None:
        if not self._prefix and _is_varint(data):
            self._prefix = bytes(data)
            return
        data, self._prefix = self._prefix + bytes(data), b""
        await self._inner.write(data)

    async def _flush(self) -> None:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            await self._inner.write(data)

    async def close(self) -> None:
        await self._flush()
        await self._inner.close()

    async def reset(self) -> None:
        self._prefix = b""
        await self._inner.reset()


READ_AHEAD = 64 * 1024


def _is_varint(data: bytes) -> bool:
    """One complete unsigned varint (a length prefix): high bit set on all but the last."""
    if not 0 < len(data) <= 10:
        return False
    return all(b & 0x80 for b in data[:-1]) and not data[-1] & 0x80


def buffer_inbound_streams(dht: Any) -> None:
    """Serve the DHT protocol through :class:`BufferedDHTStream` (re-registers the handler
    that ``KadDHT`` registered for itself)."""
    kad = _module("libp2p.kad_dht.kad_dht")
    protocol_id = _require(kad, "PROTOCOL_ID", str)
    handler = _require(dht, "handle_stream", object)
    if not callable(handler):
        raise LibraryShapeError("py-libp2p changed: KadDHT.handle_stream is not callable")

    async def handle(stream: Any) -> None:
        await handler(BufferedDHTStream(stream))

    dht.host.set_stream_handler(protocol_id, handle)


def quiet_loggers(level: int = logging.ERROR) -> None:
    """The DHT warns once per inbound stream ("Failed to read DHT message") - pure noise."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def apply(ttl: float) -> None:
    """Module-level patches; call once before building a KadDHT."""
    check_version()
    set_protocol_id()
    set_record_ttl(ttl)
    quiet_loggers()
