"""Case 1: a blob served from the node's own store, against docker-registry and file servers."""

from __future__ import annotations

from typing import Any

from bench.common import RssSampler, Transfer, curl_parallel, median
from bench.loopback import Blob, LoopbackSetup

SERVERS = ("spegel", "docker_registry", "http_server", "sendfile")
BASELINES = ("docker_registry", "http_server", "sendfile")
MODES = ("one_client", "concurrent")


def run(setup: LoopbackSetup, big: Blob, small: Blob, reps: int, clients: int) -> dict[str, Any]:
    big_urls, small_urls = setup.blob_urls(big), setup.blob_urls(small)
    for server in SERVERS:  # warm the page cache and every server's first request
        curl_parallel([big_urls[server]])
        curl_parallel([small_urls[server]])
    node_b = setup.nodes["b"]
    assert node_b.proc is not None
    sampler = RssSampler({"node_b": node_b.proc.pid})
    runs: list[dict[str, Any]] = []
    with sampler.running():
        for rep in range(reps):
            order = SERVERS[rep % len(SERVERS) :] + SERVERS[: rep % len(SERVERS)]
            rates: dict[str, dict[str, float]] = {s: {} for s in SERVERS}
            for server in order:
                one: Transfer = curl_parallel([big_urls[server]])
                many: Transfer = curl_parallel([small_urls[server]] * clients)
                rates[server] = {"one_client": one.rate, "concurrent": many.rate}
            ratios = {
                mode: {b: rates["spegel"][mode] / rates[b][mode] for b in BASELINES}
                for mode in MODES
            }
            runs.append({"rates": rates, "ratios": ratios})
    med_rates = {s: {m: median([r["rates"][s][m] for r in runs]) for m in MODES} for s in SERVERS}
    med_ratios = {
        m: {b: median([r["ratios"][m][b] for r in runs]) for b in BASELINES} for m in MODES
    }
    return {
        "big_blob_bytes": big.size,
        "small_blob_bytes": small.size,
        "clients": clients,
        "reps": reps,
        "runs": runs,
        "median_rates": med_rates,
        "median_ratios": med_ratios,
        "rss_peak_node_b": sampler.peak.get("node_b", 0),
        "rss_peak_node_b_processes": sampler.peak_per_process.get("node_b", {}),
        "targets": {
            "docker_registry": 1.0,
            "sendfile": 0.8,
        },
    }
