"""Persistence: batched writes off the request path, drops, retention, rebuild on start."""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError

from registry.events import _listeners, publish
from tests.visualize.conftest import MakeEvent
from visualize import runtime
from visualize.models import PullRecord
from visualize.persist import EventWriter, PersistOptions
from visualize.store import MemoryEventStore

pytestmark = pytest.mark.django_db


def test_submit_only_queues_and_flush_writes_in_batches(make_event: MakeEvent) -> None:
    writer = EventWriter(PersistOptions(batch_size=10))
    for i in range(25):
        writer.submit(make_event(f"sha256:{i}"))
    assert PullRecord.objects.count() == 0  # nothing touched the database yet
    with mock.patch.object(writer, "write_batch", wraps=writer.write_batch) as write_batch:
        assert writer.flush() == 25
    assert [len(call.args[0]) for call in write_batch.call_args_list] == [10, 10, 5]
    assert PullRecord.objects.count() == 25


def test_every_field_is_kept(make_event: MakeEvent) -> None:
    writer = EventWriter()
    event = make_event(
        "docker.io/library/nginx:1.27",
        "127.0.0.99",
        "incoming",
        206,
        kind="manifest",
        registry="docker.io",
        bytes=4096,
        duration=0.25,
        time=1_700_000_000.5,
    )
    writer.submit(event)
    writer.flush()
    row = PullRecord.objects.get()
    assert row.to_event() == event


def test_in_flight_events_are_not_persisted(make_event: MakeEvent) -> None:
    writer = EventWriter()
    writer.submit(make_event(status=0))
    assert writer.pending == 0


def test_full_queue_drops_and_counts(make_event: MakeEvent, caplog: Any) -> None:
    writer = EventWriter(PersistOptions(queue_size=3))
    for i in range(5):
        writer.submit(make_event(f"k{i}"))
    assert writer.pending == 3
    assert writer.dropped == 2
    assert "dropped events" in caplog.text


def test_database_errors_drop_the_batch(make_event: MakeEvent) -> None:
    writer = EventWriter()
    writer.submit(make_event("k"))
    with mock.patch.object(
        PullRecord.objects, "bulk_create", side_effect=OperationalError("database is locked")
    ):
        assert writer.flush() == 0
    assert writer.dropped == 1
    assert PullRecord.objects.count() == 0


def test_retention_by_age_and_count(make_event: MakeEvent) -> None:
    now = time.time()
    writer = EventWriter(PersistOptions(retention=3600, max_events=3), clock=lambda: now)
    writer.submit(make_event("ancient", time=now - 7200))
    for i in range(5):
        writer.submit(make_event(f"recent{i}", time=now - 10 + i))
    writer.flush()
    deleted = writer.prune()
    assert deleted == 3
    assert sorted(PullRecord.objects.values_list("key", flat=True)) == [
        "recent2",
        "recent3",
        "recent4",
    ]


def test_recent_history_rebuilds_the_graph(make_event: MakeEvent) -> None:
    now = time.time()
    writer = EventWriter(PersistOptions(retention=3600), clock=lambda: now)
    writer.submit(make_event("expired", time=now - 7200))
    writer.submit(make_event("a", "127.0.0.202", status=0))  # in flight: never persisted
    writer.submit(make_event("a", "127.0.0.202", status=200, time=now - 5))
    writer.submit(make_event("a", "127.0.0.203", status=500, time=now - 4))  # latest for "a"
    writer.submit(make_event("b", "127.0.0.204", "incoming", time=now - 3))
    writer.submit(make_event("c", "127.0.0.204", "incoming", method="HEAD", time=now - 2))
    writer.flush()
    store = MemoryEventStore()
    store.load(writer.recent(limit=100))
    assert sorted(store.graph()["links"], key=lambda link: link["id"]) == [
        {"id": "a", "source": "self", "target": "127.0.0.203", "status": 500},
        {"id": "b", "source": "127.0.0.204", "target": "self", "status": 200},
    ]


@pytest.mark.django_db(transaction=True)
def test_runtime_start_rebuilds_listens_and_stop_flushes(
    settings: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    # History from a previous run.
    PullRecord.from_event(make_event("before-restart", "127.0.0.207")).save()
    config = dataclasses.replace(django_settings.SPEGEL, visualize_persist=True)
    writer = runtime.start(config, store, migrate=False)
    try:
        assert writer is not None and writer.running
        assert writer.submit in _listeners
        assert store.get("before-restart") is not None  # rebuilt on start
        assert runtime.start(config, store, migrate=False) is writer  # idempotent
        publish(make_event("after-start", "127.0.0.208"))
        publish(make_event("head", "127.0.0.208", method="HEAD"))
    finally:
        runtime.stop(timeout=5)
    assert runtime.writer() is None
    assert writer.submit not in _listeners
    assert set(PullRecord.objects.values_list("key", flat=True)) == {
        "before-restart",
        "after-start",
        "head",
    }


def test_runtime_does_nothing_without_persist(store: MemoryEventStore) -> None:
    config = dataclasses.replace(django_settings.SPEGEL, visualize_persist=False)
    assert runtime.start(config, store) is None
    runtime.stop()
