"""Batched, off-request-path persistence of pull events to SQLite through the ORM.

``submit`` is the registry listener: it only puts the event on a bounded queue (never blocks,
never raises). A daemon thread drains the queue in batches with one ``bulk_create`` per batch
and applies retention now and then. When the queue is full or SQLite is locked or full, events
are dropped, counted and logged (at most one log line per ``LOG_EVERY`` seconds): history is a
convenience, pulls are the product.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, close_old_connections, connections, transaction

from registry.events import PullEvent
from visualize.models import PullRecord

logger = logging.getLogger(__name__)

LOG_EVERY = 10.0


@dataclass(frozen=True)
class PersistOptions:
    retention: float = 168 * 3600.0  # seconds; 0 keeps everything
    max_events: int = 100_000  # 0 keeps everything
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval: float = 0.5
    prune_interval: float = 60.0


class EventWriter:
    def __init__(
        self, options: PersistOptions | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.options = options or PersistOptions()
        self.clock = clock
        self._queue: queue.Queue[PullEvent] = queue.Queue(maxsize=self.options.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._last_drop_log = 0.0
        self.written = 0
        self.dropped = 0

    # -- request path ---------------------------------------------------------------------

    def submit(self, event: PullEvent) -> None:
        """Queue a finished event; in-flight ones (status 0) are followed by their final one."""
        if event.status == 0:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._dropped(1, "queue full")
        except Exception:  # never into the registry
            logger.exception("visualize: could not queue event")

    # -- writer side ----------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything queued so far, in batches; returns how many rows were written."""
        total = 0
        while True:
            batch = self._drain(self.options.batch_size)
            if not batch:
                return total
            total += self.write_batch(batch)

    def write_batch(self, events: list[PullEvent]) -> int:
        try:
            with transaction.atomic():
                PullRecord.objects.bulk_create([PullRecord.from_event(e) for e in events])
        except DatabaseError as exc:  # locked, disk full, read-only, ...
            self._dropped(len(events), f"database error: {exc}")
            return 0
        self.written += len(events)
        return len(events)

    def prune(self) -> int:
        """Apply retention by age and by count; returns how many rows were deleted."""
        deleted = 0
        try:
            if self.options.retention > 0:
                cutoff = datetime.fromtimestamp(self.clock(), tz=UTC) - timedelta(
                    seconds=self.options.retention
                )
                deleted += PullRecord.objects.filter(time__lt=cutoff).delete()[0]
            if self.options.max_events > 0:
                # Ids grow with insertion order: keep the newest max_events rows.
                newest = PullRecord.objects.order_by("-id").values_list("id", flat=True)
                boundary = list(newest[self.options.max_events - 1 : self.options.max_events])
                if boundary:
                    deleted += PullRecord.objects.filter(id__lt=boundary[0]).delete()[0]
        except DatabaseError as exc:
            logger.warning("visualize: retention failed", extra={"error": str(exc)})
        return deleted

    def recent(self, limit: int) -> list[PullEvent]:
        """The newest ``limit`` GET events within retention, oldest first (to rebuild the graph)."""
        rows = PullRecord.objects.filter(method="GET").order_by("-time", "-id")
        if self.options.retention > 0:
            cutoff = datetime.fromtimestamp(self.clock(), tz=UTC) - timedelta(
                seconds=self.options.retention
            )
            rows = rows.filter(time__gte=cutoff)
        return [row.to_event() for row in reversed(rows[:limit])]

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="visualize-persist", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after a final flush (bounded by ``timeout``)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "visualize: persistence did not flush in time", extra={"timeout": timeout}
            )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._stop.wait(self.options.flush_interval)
                close_old_connections()
                self.flush()
                now = time.monotonic()
                if now - self._last_prune >= self.options.prune_interval:
                    self._last_prune = now
                    self.prune()
            self.flush()
        except Exception:
            logger.exception("visualize: persistence thread failed")
        finally:
            connections.close_all()

    def _drain(self, limit: int) -> list[PullEvent]:
        batch: list[PullEvent] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _dropped(self, count: int, reason: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= LOG_EVERY:
            self._last_drop_log = now
            logger.warning(
                "visualize: dropped events",
                extra={"reason": reason, "dropped": count, "dropped_total": self.dropped},
            )
