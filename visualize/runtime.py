"""Start and stop visualize persistence from the node process.

The ``registry`` command calls, once its event loop runs::

    await visualize.runtime.astart()   # or start() from a thread without a running loop
    ...
    await visualize.runtime.astop()    # on SIGTERM, after the servers stopped: final flush

Both do nothing unless ``settings.SPEGEL.visualize_persist`` is set. The in-memory store needs no
start: ``VisualizeConfig.ready`` already registered it with ``registry.events``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from django.conf import settings
from django.core.management import call_command
from django.db import connections

from registry.config import SpegelConfig
from registry.events import add_listener, remove_listener
from visualize.persist import EventWriter, PersistOptions
from visualize.store import MemoryEventStore, get_store

logger = logging.getLogger(__name__)

_writer: EventWriter | None = None
_lock = threading.Lock()


def prepare_database() -> None:
    """Create the SQLite file's directory and apply migrations (auth/admin tables included)."""
    name = str(settings.DATABASES["default"]["NAME"])
    if not name.startswith("file:") and name != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(name)), exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def start(
    config: SpegelConfig | None = None,
    store: MemoryEventStore | None = None,
    *,
    migrate: bool = True,
) -> EventWriter | None:
    """Begin persisting events; rebuild the in-memory graph from recent history first.

    Blocking (ORM): call it from a thread, or use ``astart`` inside an event loop.
    """
    global _writer
    config = config or settings.SPEGEL
    if not config.visualize_persist:
        return None
    with _lock:
        if _writer is not None:
            return _writer
        if migrate:
            prepare_database()
        writer = EventWriter(
            PersistOptions(
                retention=config.visualize_retention, max_events=config.visualize_max_events
            )
        )
        writer.prune()
        store = store or get_store()
        restored = store.load(writer.recent(store.max_links))
        add_listener(writer.submit)
        writer.start()
        _writer = writer
    connections.close_all()  # this thread's; the writer thread has its own
    logger.info(
        "visualize: persistence started",
        extra={"db": str(settings.DATABASES["default"]["NAME"]), "restored": restored},
    )
    return writer


def stop(timeout: float = 5.0) -> None:
    """Stop listening, flush what is queued (bounded by ``timeout``) and close connections."""
    global _writer
    with _lock:
        writer, _writer = _writer, None
    if writer is None:
        return
    remove_listener(writer.submit)
    writer.stop(timeout)
    connections.close_all()
    logger.info(
        "visualize: persistence stopped",
        extra={"written": writer.written, "dropped": writer.dropped},
    )


def writer() -> EventWriter | None:
    return _writer


async def astart(
    config: SpegelConfig | None = None, store: MemoryEventStore | None = None
) -> EventWriter | None:
    return await asyncio.to_thread(start, config, store)


async def astop(timeout: float = 5.0) -> None:
    await asyncio.to_thread(stop, timeout)
