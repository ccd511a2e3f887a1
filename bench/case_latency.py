"""Case 3: manifest HEAD latency, local and via a peer, and a miss answered with 404."""

from __future__ import annotations

import http.client
import os
import time
from typing import Any
from urllib.parse import quote, urlsplit

from bench.common import ms, percentile
from bench.loopback import IMAGE_REGISTRY, LoopbackSetup
from registry.config import SpegelConfig

# The nodes run with the product default --mirror-resolve-timeout.
RESOLVE_TIMEOUT = SpegelConfig().mirror_resolve_timeout


def head_times(base_url: str, path: str, count: int, expect: int) -> list[float]:
    """``count`` HEADs on one keep-alive connection; seconds per request."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    times: list[float] = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("HEAD", path)
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - start
            if resp.status != expect:
                raise RuntimeError(f"HEAD {base_url}{path}: {resp.status}, expected {expect}")
            times.append(elapsed)
    finally:
        conn.close()
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {
        "count": len(times),
        "p50_ms": ms(percentile(times, 50)),
        "p90_ms": ms(percentile(times, 90)),
        "p99_ms": ms(percentile(times, 99)),
        "max_ms": ms(max(times)),
    }


def run(setup: LoopbackSetup, count: int, warmup: int = 20) -> dict[str, Any]:
    ns = quote(IMAGE_REGISTRY, safe="")
    present = f"/v2/bench/app/manifests/v1?ns={ns}"
    missing = f"/v2/bench/app/manifests/sha256:{os.urandom(32).hex()}?ns={ns}"
    a, b = setup.nodes["a"].url, setup.nodes["b"].url
    cases = {
        "local": (b, present, 200),
        "via_peer": (a, present, 200),
        "miss_404": (a, missing, 404),
    }
    out: dict[str, Any] = {"resolve_timeout_ms": RESOLVE_TIMEOUT * 1000, "requests": count}
    for name, (url, path, status) in cases.items():
        head_times(url, path, warmup, status)
        out[name] = summary(head_times(url, path, count, status))
    # The miss must be answered within the resolve timeout plus a few ms.
    out["miss_budget_ms"] = RESOLVE_TIMEOUT * 1000 + 5
    return out
