"""Prometheus metrics with the reference's names, with bounded label values (C28)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

_SIZE_BUCKETS = tuple(1024 * 5**n for n in range(10))

mirror_requests_total = Counter(
    "spegel_mirror_requests_total",
    "Total number of mirror requests.",
    ["registry", "cache"],
)
mirror_last_success = Gauge(
    "spegel_mirror_last_success_timestamp_seconds",
    "The timestamp of the last successful mirror request.",
)
resolve_duration = Histogram(
    "spegel_resolve_duration_seconds",
    "The duration for router to resolve a peer.",
    ["router"],
)
advertised_image_tags = Gauge(
    "spegel_advertised_image_tags", "Number of image tags advertised to be available.", ["registry"]
)
advertised_image_digests = Gauge(
    "spegel_advertised_image_digests",
    "Number of image digests advertised to be available.",
    ["registry"],
)
advertised_content_digests = Gauge(
    "spegel_advertised_content_digests",
    "Number of content digests advertised to be available.",
    ["registry"],
)
http_request_duration = Histogram(
    "http_request_duration_seconds",
    "The latency of the HTTP requests.",
    ["handler", "method", "code"],
)
http_response_size = Histogram(
    "http_response_size_bytes",
    "The size of the HTTP responses.",
    ["handler", "method", "code"],
    buckets=_SIZE_BUCKETS,
)
http_requests_inflight = Gauge(
    "http_requests_inflight", "The number of inflight requests being handled.", ["handler"]
)

OTHER = "other"
_allowed_registries: set[str] = set()


def allow_registries(hosts: set[str]) -> None:
    """Registries that may appear as label values (configured or seen in the local store)."""
    _allowed_registries.update(h for h in hosts if h)


def registry_label(registry: str) -> str:
    """``registry`` itself when known, else ``other``: a client-chosen ns never adds series."""
    if registry in _allowed_registries:
        return registry
    return OTHER


def mirror_request(registry: str, hit: bool) -> None:
    mirror_requests_total.labels(registry_label(registry), "hit" if hit else "miss").inc()
    if hit:
        mirror_last_success.set(time.time())
