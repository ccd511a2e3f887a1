"""The store and the graph it draws, including the seed's direction cases."""

from __future__ import annotations

import threading

import pytest

from registry.events import NOT_FOUND_PEER, PullEvent, publish
from tests.visualize.conftest import MakeEvent
from visualize.graph import Direction, counters, etag, parse_direction, status_class
from visualize.store import MemoryEventStore


@pytest.fixture
def seed_store(make_event: MakeEvent) -> MemoryEventStore:
    """The seed's store test: two outgoing requests to 127.0.0.1, one incoming from 127.0.0.200."""
    store = MemoryEventStore()
    store.record(make_event("one", "127.0.0.1", "outgoing", 200))
    store.record(make_event("two", "127.0.0.1", "outgoing", 404))
    store.record(make_event("three", "127.0.0.200", "incoming", 200))
    return store


ONE = {"id": "one", "source": "self", "target": "127.0.0.1", "status": 200}
TWO = {"id": "two", "source": "self", "target": "127.0.0.1", "status": 404}
THREE = {"id": "three", "source": "127.0.0.200", "target": "self", "status": 200}


@pytest.mark.parametrize(
    ("direction", "nodes", "links"),
    [
        ("both", ["self", "127.0.0.1", "127.0.0.200"], [ONE, TWO, THREE]),
        ("outgoing", ["self", "127.0.0.1"], [ONE, TWO]),
        ("incoming", ["self", "127.0.0.200"], [THREE]),
    ],
)
def test_seed_direction_cases(
    seed_store: MemoryEventStore, direction: str, nodes: list[str], links: list[dict]
) -> None:
    graph = seed_store.graph(parse_direction(direction))
    assert graph["nodes"] == [{"id": n} for n in nodes]
    assert sorted(graph["links"], key=lambda link: link["id"]) == sorted(
        links, key=lambda link: link["id"]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("incoming", Direction.INCOMING),
        ("OUTGOING", Direction.OUTGOING),
        ("both", Direction.BOTH),
        ("", Direction.BOTH),
        (None, Direction.BOTH),
        ("true", Direction.OUTGOING),  # the seed's "root is source"
        ("false", Direction.INCOMING),
    ],
)
def test_parse_direction(raw: str | None, expected: Direction) -> None:
    assert parse_direction(raw) is expected


def test_parse_direction_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid direction"):
        parse_direction("sideways")


def test_same_key_is_updated_in_place(make_event: MakeEvent) -> None:
    store = MemoryEventStore()
    store.record(make_event("sha256:a", "127.0.0.202", status=0))
    store.record(make_event("sha256:a", "127.0.0.202", status=200))
    store.record(make_event("sha256:a", "127.0.0.203", status=500))
    graph = store.graph()
    assert graph["links"] == [
        {"id": "sha256:a", "source": "self", "target": "127.0.0.203", "status": 500}
    ]
    assert graph["nodes"] == [{"id": "self"}, {"id": "127.0.0.203"}]


def test_head_requests_are_ignored(make_event: MakeEvent) -> None:
    store = MemoryEventStore()
    store.record(make_event("sha256:a", method="HEAD"))
    assert store.graph()["links"] == []
    assert store.ignored == 1


def test_not_found_node_for_outgoing_without_peer(make_event: MakeEvent) -> None:
    store = MemoryEventStore()
    store.record(make_event("docker.io/library/x:1", NOT_FOUND_PEER, "outgoing", 404))
    graph = store.graph()
    assert {"id": NOT_FOUND_PEER} in graph["nodes"]
    assert graph["links"][0]["target"] == NOT_FOUND_PEER


def test_cap_drops_the_least_recently_updated(make_event: MakeEvent) -> None:
    store = MemoryEventStore(max_links=3)
    for key in ["a", "b", "c"]:
        store.record(make_event(key))
    store.record(make_event("a", status=500))  # refreshes "a": "b" is now the oldest
    store.record(make_event("d"))
    assert [edge.key for edge in store.edges()] == ["c", "a", "d"]
    assert store.evicted == 1
    assert len(store) == 3


def test_memory_stays_bounded_under_many_events(make_event: MakeEvent) -> None:
    store = MemoryEventStore(max_links=50)
    for i in range(5000):
        store.record(make_event(f"sha256:{i}", f"10.0.{i % 7}.1"))
    assert len(store) == 50
    assert store.evicted == 4950


def test_subscribers_hear_changed_and_evicted_keys(make_event: MakeEvent) -> None:
    store = MemoryEventStore(max_links=1)
    heard: list[tuple[str, ...]] = []
    unsubscribe = store.subscribe(heard.append)
    store.record(make_event("a"))
    store.record(make_event("b"))
    unsubscribe()
    store.record(make_event("c"))
    assert heard == [("a",), ("b", "a")]


def test_record_never_raises(make_event: MakeEvent) -> None:
    store = MemoryEventStore()

    def broken(keys: tuple[str, ...]) -> None:
        raise RuntimeError("boom")

    store.subscribe(broken)
    store.record(make_event("a"))
    store.record("not an event")  # type: ignore[arg-type]
    assert [edge.key for edge in store.edges()] == ["a"]


def test_store_listens_to_registry_events(store: MemoryEventStore, make_event: MakeEvent) -> None:
    """AppConfig.ready registered the listener: publishing reaches the current store."""
    publish(make_event("sha256:published"))
    assert store.get("sha256:published") is not None


def test_concurrent_recording_is_safe(make_event: MakeEvent) -> None:
    store = MemoryEventStore(max_links=100)
    events = [make_event(f"k{i}") for i in range(2000)]

    def work(part: list[PullEvent]) -> None:
        for event in part:
            store.record(event)

    threads = [threading.Thread(target=work, args=(events[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 100
    assert store.version == 2000


@pytest.mark.parametrize(
    ("status", "cls"), [(0, "pending"), (200, "ok"), (206, "ok"), (404, "error"), (502, "error")]
)
def test_status_class(status: int, cls: str) -> None:
    assert status_class(status) == cls


def test_counters(seed_store: MemoryEventStore) -> None:
    assert counters(seed_store.graph()) == {
        "peers": 2,
        "links": 3,
        "ok": 2,
        "errors": 1,
        "pending": 0,
    }


def test_etag_changes_with_direction_and_version() -> None:
    tags = {etag(d, v) for d in Direction for v in (1, 2)}
    assert len(tags) == 6
    assert etag(Direction.BOTH, 1) == etag(Direction.BOTH, 1)
