"""Fixtures for routing tests: real routing daemons on 127.0.0.x loopback addresses only."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from routing.client import P2PRouter

Factory = Callable[..., Coroutine[Any, Any, P2PRouter]]


def free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


async def wait_for(predicate: Callable[[], Coroutine[Any, Any, bool]], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return await predicate()


async def found(router: P2PRouter, key: str, timeout: float = 0.5) -> set[str]:
    return {p.peer_id async for p in router.resolve(key, 0, timeout)}


@pytest.fixture
async def daemons() -> AsyncIterator[Factory]:
    """Start routing daemons; every one is stopped by its PID at teardown."""
    started: list[P2PRouter] = []
    workdir = tempfile.mkdtemp(prefix="spegel-routing-")

    async def start(ip: str, *args: str, port: int | None = None) -> P2PRouter:
        assert ip.startswith("127."), "tests only ever use loopback addresses"
        port = port or free_port(ip)
        router = P2PRouter(f"{workdir}/{ip}-{port}.sock", ["--router-addr", f"{ip}:{port}", *args])
        started.append(router)
        await router.start()
        return router

    yield start
    await asyncio.gather(*(router.stop() for router in started))
    for router in started:
        assert router.process is None
