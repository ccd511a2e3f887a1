"""A per-node cap on bytes served to peers, shared by every blob response (``--blob-speed``)."""

from __future__ import annotations

import asyncio
import time

from registry.config import parse_byterate


class Throttle:
    """Token bucket: ``rate`` bytes per second; idle time saves up at most a small burst
    (a quarter second's worth, 1 MiB at most), so the cap holds from the first byte."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.burst = float(min(rate / 4, 1 << 20))
        self.tokens = 0.0
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    @classmethod
    def from_rate(cls, text: str) -> Throttle:
        return cls(parse_byterate(text))

    async def consume(self, amount: int) -> None:
        async with self.lock:  # FIFO: responses share the budget fairly
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= amount
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)
