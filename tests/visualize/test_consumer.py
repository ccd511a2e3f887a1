"""The WebSocket: snapshot first, coalesced updates, direction changes, same-origin only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from spegel_site.asgi import admin_application
from tests.visualize.conftest import MakeEvent
from visualize.feed import GraphFeed
from visualize.graph import Direction
from visualize.store import MemoryEventStore

SAME_ORIGIN = [(b"host", b"127.0.0.1:9090"), (b"origin", b"http://127.0.0.1:9090")]


def communicator(path: str = "/visualize/ws", headers: Any = SAME_ORIGIN) -> WebsocketCommunicator:
    return WebsocketCommunicator(admin_application, path, headers=headers)


async def test_snapshot_then_update(
    enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    store.record(make_event("old", "127.0.0.202", status=200))
    ws = communicator()
    connected, _ = await ws.connect()
    assert connected
    snapshot = await ws.receive_json_from(timeout=2)
    assert snapshot["type"] == "snapshot"
    assert snapshot["direction"] == "both"
    assert snapshot["links"] == [
        {"id": "old", "source": "self", "target": "127.0.0.202", "status": 200}
    ]
    assert snapshot["nodes"] == [{"id": "self"}, {"id": "127.0.0.202"}]

    store.record(make_event("new", "127.0.0.203", "incoming", status=0))
    update = await ws.receive_json_from(timeout=2)
    assert update["type"] == "update"
    assert update["links"] == [
        {"id": "new", "source": "127.0.0.203", "target": "self", "status": 0}
    ]
    assert update["removed"] == []
    await ws.disconnect()
    assert store.subscriber_count == 0


async def test_burst_is_coalesced(
    enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    ws = communicator()
    await ws.connect()
    await ws.receive_json_from(timeout=2)
    for i in range(50):
        store.record(make_event(f"k{i}", status=200))
    messages = []
    # receive_nothing waits without cancelling the consumer (a timed-out receive would).
    while not await ws.receive_nothing(timeout=0.5):
        messages.append(await ws.receive_json_from(timeout=1))
    assert 1 <= len(messages) <= 3
    keys = {link["id"] for message in messages for link in message["links"]}
    assert keys == {f"k{i}" for i in range(50)}
    await ws.disconnect()


async def test_direction_at_connect_and_by_message(
    enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    store.record(make_event("out", "127.0.0.202", "outgoing"))
    store.record(make_event("in", "127.0.0.203", "incoming"))
    ws = communicator("/visualize/ws?direction=incoming")
    await ws.connect()
    first = await ws.receive_json_from(timeout=2)
    assert first["direction"] == "incoming"
    assert [link["id"] for link in first["links"]] == ["in"]

    await ws.send_to(text_data=json.dumps({"direction": "outgoing"}))
    second = await ws.receive_json_from(timeout=2)
    assert second["type"] == "snapshot"
    assert second["direction"] == "outgoing"
    assert [link["id"] for link in second["links"]] == ["out"]

    # A change the client's direction does not show arrives as a removal, never as a link.
    store.record(make_event("in2", "127.0.0.204", "incoming"))
    update = await ws.receive_json_from(timeout=2)
    assert update["links"] == []
    assert update["removed"] == ["in2"]

    await ws.send_to(text_data="not json")
    error = await ws.receive_json_from(timeout=2)
    assert error["type"] == "error"
    await ws.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"127.0.0.1:9090"), (b"origin", b"http://evil.example")],
        [(b"host", b"127.0.0.1:9090"), (b"origin", b"http://127.0.0.1:9091")],
        [(b"host", b"127.0.0.1:9090"), (b"origin", b"null")],
        [(b"host", b"127.0.0.1:9090")],
    ],
    ids=["foreign-host", "foreign-port", "null-origin", "no-origin"],
)
async def test_foreign_origin_rejected(enabled: Any, store: MemoryEventStore, headers: Any) -> None:
    ws = communicator(headers=headers)
    connected, _ = await ws.connect()
    assert not connected


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        (b"spegel.local", b"http://spegel.local"),
        (b"spegel.local:80", b"http://SPEGEL.local"),
        (b"[::1]:9090", b"http://[::1]:9090"),
        (b"node:443", b"https://node"),
    ],
)
async def test_same_origin_variants_accepted(
    enabled: Any, store: MemoryEventStore, host: bytes, origin: bytes
) -> None:
    ws = communicator(headers=[(b"host", host), (b"origin", origin)])
    connected, _ = await ws.connect()
    assert connected
    await ws.disconnect()


async def test_socket_refused_when_disabled(store: MemoryEventStore) -> None:
    ws = communicator()
    connected, _ = await ws.connect()
    assert not connected


async def test_bad_direction_refused(enabled: Any, store: MemoryEventStore) -> None:
    ws = communicator("/visualize/ws?direction=sideways")
    connected, _ = await ws.connect()
    assert not connected


async def test_feed_wakes_from_other_threads(
    store: MemoryEventStore, make_event: MakeEvent
) -> None:
    """The registry may record from another thread: the feed's loop still wakes up."""
    feed = GraphFeed(store, Direction.BOTH, interval=0.05)
    feed.snapshot()
    await asyncio.to_thread(store.record, make_event("threaded"))
    message = await asyncio.wait_for(feed.next_message(), 2)
    assert message is not None
    assert [link["id"] for link in message["links"]] == ["threaded"]
    feed.close()


async def test_feed_resyncs_after_a_flood(store: MemoryEventStore, make_event: MakeEvent) -> None:
    big = MemoryEventStore(max_links=10)
    feed = GraphFeed(big, Direction.BOTH, interval=0)
    feed.snapshot()
    for i in range(600):
        big.record(make_event(f"k{i}"))
    message = await asyncio.wait_for(feed.next_message(), 2)
    assert message is not None
    assert message["type"] == "snapshot"
    assert len(message["links"]) == 10
    feed.close()


async def test_spread_burst_is_rate_limited(
    enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    """40 events over ~0.4 s give a handful of pushes (at most one per 100 ms), not 40."""
    ws = communicator()
    await ws.connect()
    await ws.receive_json_from(timeout=2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(40):
        store.record(make_event(f"s{i}", status=200))
        await asyncio.sleep(0.01)
    elapsed = loop.time() - start
    messages = []
    while not await ws.receive_nothing(timeout=0.5):
        messages.append(await ws.receive_json_from(timeout=1))
    assert 2 <= len(messages) <= int(elapsed / 0.1) + 2
    assert {link["id"] for m in messages for link in m["links"]} == {f"s{i}" for i in range(40)}
    await ws.disconnect()
