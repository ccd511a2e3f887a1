"""Case 2: the mirror path (client -> node A -> peer B) against fetching from B directly."""

from __future__ import annotations

from typing import Any

from bench.common import RssSampler, curl_parallel, median
from bench.loopback import Blob, LoopbackSetup

PEER_HEADERS = {"X-Spegel-Mirrored": "true"}
MODES = ("one_client", "concurrent")


def run(setup: LoopbackSetup, big: Blob, small: Blob, reps: int, clients: int) -> dict[str, Any]:
    big_urls, small_urls = setup.blob_urls(big), setup.blob_urls(small)
    curl_parallel([big_urls["mirror_via_a"]])
    curl_parallel([big_urls["spegel"]], PEER_HEADERS)
    roots = {name: node.proc.pid for name, node in setup.nodes.items() if node.proc}
    sampler = RssSampler({f"node_{k}": v for k, v in roots.items()})
    runs: list[dict[str, Any]] = []
    failures = {"mirror": 0, "direct": 0}
    with sampler.running():
        for rep in range(reps):
            rates: dict[str, dict[str, float]] = {"mirror": {}, "direct": {}}
            steps = [("mirror", False), ("direct", True)]
            if rep % 2:
                steps.reverse()
            for name, direct in steps:
                key = "spegel" if direct else "mirror_via_a"
                headers = PEER_HEADERS if direct else None
                one = curl_parallel([big_urls[key]], headers)
                many = curl_parallel([small_urls[key]] * clients, headers, allow_failures=True)
                rates[name] = {"one_client": one.rate, "concurrent": many.rate}
                failures[name] += many.failures
            ratios = {m: rates["mirror"][m] / rates["direct"][m] for m in MODES}
            runs.append({"rates": rates, "ratios": ratios})
    return {
        "big_blob_bytes": big.size,
        "small_blob_bytes": small.size,
        "clients": clients,
        "reps": reps,
        "runs": runs,
        "median_rates": {
            k: {m: median([r["rates"][k][m] for r in runs]) for m in MODES}
            for k in ("mirror", "direct")
        },
        "median_ratios": {m: median([r["ratios"][m] for r in runs]) for m in MODES},
        "rss_peak": dict(sampler.peak),
        "rss_peak_processes": dict(sampler.peak_per_process),
        "target": 0.7,
        # Concurrent requests answered 404 (not found in time) instead of the blob; the
        # concurrent rate counts only the bytes that arrived.
        "concurrent_failures": failures,
        "concurrent_requests": reps * clients,
    }
