"""Persisted pull events (optional, ``--visualize-persist``): the history behind the admin."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models

from registry.events import PullEvent


class PullRecord(models.Model):
    class Direction(models.TextChoices):
        INCOMING = "incoming", "incoming (peer -> self)"
        OUTGOING = "outgoing", "outgoing (self -> peer)"

    class Kind(models.TextChoices):
        MANIFEST = "manifest", "manifest"
        BLOB = "blob", "blob"

    time = models.DateTimeField(db_index=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    peer = models.CharField(max_length=255, db_index=True)
    key = models.CharField(max_length=512, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    registry = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=8, default="GET")
    status = models.PositiveSmallIntegerField(db_index=True)
    bytes = models.BigIntegerField(default=0)
    duration = models.FloatField(default=0.0, help_text="seconds")

    class Meta:
        verbose_name = "pull event"
        verbose_name_plural = "pull events"
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        arrow = "<-" if self.direction == self.Direction.OUTGOING else "->"
        return f"{self.key} {arrow} {self.peer} ({self.status})"

    @classmethod
    def from_event(cls, event: PullEvent) -> PullRecord:
        return cls(
            time=datetime.fromtimestamp(event.time, tz=UTC),
            direction=event.direction,
            peer=event.peer[:255],
            key=event.key[:512],
            kind=event.kind,
            registry=event.registry[:255],
            method=event.method.upper()[:8],
            status=event.status,
            bytes=event.bytes,
            duration=event.duration,
        )

    def to_event(self) -> PullEvent:
        return PullEvent(
            direction=self.direction,  # type: ignore[arg-type]
            peer=self.peer,
            key=self.key,
            kind=self.kind,  # type: ignore[arg-type]
            registry=self.registry,
            method=self.method,
            status=self.status,
            bytes=self.bytes,
            duration=self.duration,
            time=self.time.timestamp(),
        )
