"""Fixtures for the visualize tests: a fresh store per test, events, visualize switched on."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from registry.events import PullEvent
from visualize import store as store_module
from visualize.store import MemoryEventStore

MakeEvent = Callable[..., PullEvent]


@pytest.fixture
def store() -> Iterator[MemoryEventStore]:
    """A fresh process-wide store (what the listener, views and sockets use)."""
    fresh = MemoryEventStore(max_links=100)
    store_module.set_store(fresh)
    yield fresh
    store_module.set_store(None)


@pytest.fixture
def make_event() -> MakeEvent:
    def make(
        key: str = "sha256:aaa",
        peer: str = "127.0.0.202",
        direction: str = "outgoing",
        status: int = 200,
        **fields: Any,
    ) -> PullEvent:
        values: dict[str, Any] = {
            "kind": "blob",
            "registry": "docker.io",
            "method": "GET",
            "bytes": 1024,
            "duration": 0.01,
            "time": time.time(),
        }
        values.update(fields)
        return PullEvent(direction=direction, peer=peer, key=key, status=status, **values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def enabled(settings: Any) -> Any:
    """``--visualize-enabled`` for this test."""
    settings.SPEGEL = dataclasses.replace(settings.SPEGEL, visualize_enabled=True)
    return settings
