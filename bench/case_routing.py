"""Case 4: the libp2p routing daemons alone (``python -m routing.daemon``) on 127.0.x.y.

Per cluster size: time to advertise N keys from one node until every other node holds every
record (counted with ``stats``), resolve latency for keys held by another node (time to the
first peer, as the mirror uses it), RSS per daemon after the load, idle CPU per daemon.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import idle_cpu_percent, ms, percentile, rss_bytes
from registry.devcluster.daemons import free_port
from routing.client import P2PRouter


def spegel_keys(count: int, salt: str) -> list[str]:
    """Keys shaped like the product's: layer digests."""
    return ["sha256:" + hashlib.sha256(f"{salt}-{i}".encode()).hexdigest() for i in range(count)]


async def _start(workdir: Path, ips: list[str]) -> list[P2PRouter]:
    def router(ip: str, *args: str) -> P2PRouter:
        port = free_port(ip)
        return P2PRouter(
            str(workdir / f"{ip}.sock"),
            ["--router-addr", f"{ip}:{port}", "--log-level", "WARNING", *args],
        )

    first = router(ips[0])
    nodes = [first]
    await first.start()
    addr = (await first.self_addrs())[0]
    rest = [
        router(ip, "--bootstrap-kind", "static", "--static-bootstrap-peers", addr) for ip in ips[1:]
    ]
    nodes += rest
    await asyncio.gather(*(r.start(timeout=120) for r in rest))
    deadline = time.monotonic() + 120
    for node in nodes:
        while len(await node.peers()) < len(nodes) - 1:
            if time.monotonic() > deadline:
                raise TimeoutError("routing daemons did not mesh")
            await asyncio.sleep(0.2)
    return nodes


async def _held_everywhere(nodes: list[P2PRouter], provider: str, count: int) -> list[int]:
    stats = await asyncio.gather(*(n.stats() for n in nodes[1:]))
    return [int(s["by_provider"].get(provider, 0)) for s in stats]


async def run_size(
    size: int, keys: int, resolves: int, idle_seconds: float, subnet: int, wait_limit: float
) -> dict[str, Any]:
    ips = [f"127.0.{subnet}.{i + 1}" for i in range(size)]
    workdir = Path(tempfile.mkdtemp(prefix="spb-r-", dir="/tmp"))
    nodes: list[P2PRouter] = []
    try:
        started = time.monotonic()
        nodes = await _start(workdir, ips)
        start_seconds = time.monotonic() - started
        provider = str((await nodes[0].self_info())["peer_id"])
        key_list = spegel_keys(keys, f"n{size}")
        t0 = time.monotonic()
        await nodes[0].advertise(key_list)
        call_returned = time.monotonic() - t0
        held = await _held_everywhere(nodes, provider, keys)
        while min(held) < keys and time.monotonic() - t0 < wait_limit:
            await asyncio.sleep(0.25)
            held = await _held_everywhere(nodes, provider, keys)
        advertise_seconds = time.monotonic() - t0
        complete = min(held) >= keys
        rng = random.Random(size)
        times: list[float] = []
        misses = 0
        for i in range(resolves):
            node = nodes[1 + i % (size - 1)]
            key = rng.choice(key_list)
            t = time.perf_counter()
            got = False
            async for _peer in node.resolve(key, 1, 1.0):
                got = True
                break
            times.append(time.perf_counter() - t)
            misses += 0 if got else 1
        pids = [n.pid for n in nodes if n.pid]
        rss = [rss_bytes(p) for p in pids]
        await asyncio.sleep(2)
        idle = await asyncio.to_thread(idle_cpu_percent, pids, idle_seconds)
        return {
            "nodes": size,
            "keys": keys,
            "start_seconds": round(start_seconds, 2),
            "advertise_call_seconds": round(call_returned, 2),
            "advertise_seconds": round(advertise_seconds, 2),
            "all_records_everywhere": complete,
            "records_held_min": min(held),
            "records_held_max": max(held),
            "resolves": resolves,
            "resolve_not_found": misses,
            "resolve_p50_ms": ms(percentile(times, 50)),
            "resolve_p99_ms": ms(percentile(times, 99)),
            "resolve_max_ms": ms(max(times)),
            "rss_max_bytes": max(rss),
            "rss_median_bytes": sorted(rss)[len(rss) // 2],
            "idle_cpu_percent_max": max(idle.values()),
            "idle_cpu_percent_median": sorted(idle.values())[len(idle) // 2],
            "idle_seconds": idle_seconds,
        }
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, workdir, True)


def run(plan: list[tuple[int, int]], resolves: int, idle_seconds: float) -> dict[str, Any]:
    """``plan``: (nodes, keys) per cluster size."""
    results = []
    for index, (size, keys) in enumerate(plan):
        results.append(
            asyncio.run(
                run_size(size, keys, resolves, idle_seconds, subnet=6 + index, wait_limit=240)
            )
        )
    return {
        "sizes": results,
        "targets": {
            "resolve_p50_ms": 20,
            "resolve_p99_ms": 100,
            "advertise_10k_seconds": 60,
            "idle_cpu_percent": 1.0,
            "rss_bytes": 256 << 20,
        },
    }
