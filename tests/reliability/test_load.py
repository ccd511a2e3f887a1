"""Load on one live node: 200 concurrent blob downloads of mixed sizes and 1,000 concurrent
manifest HEADs, every answer checked; the node's peak memory and open file descriptors are
measured from /proc and bounded. Counts and time are bounded; figures are printed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest

from tests.conftest import LocalNode
from tests.fixtures.cases import BLOBS, DIGESTS
from tests.reliability.conftest import PeakRss, fd_count, status_kib, wait_until

pytestmark = pytest.mark.slow

BLOB_DOWNLOADS = 200
MANIFEST_HEADS = 1000
RSS_LIMIT_MIB = 256
FD_SLACK = 10


def blob_mix(node: LocalNode) -> list[tuple[str, str, int]]:
    """(path, digest, size) for every blob size the fixtures hold: 11 B to 6 MiB."""
    mix = [(f"/v2/library/nginx/blobs/{DIGESTS['L']}?ns=docker.io", DIGESTS["L"], 11)]
    for image in node.images.values():
        for blob in [*image.layers, *image.configs]:
            repo = image.repository
            mix.append((f"/v2/{repo}/blobs/{blob.digest}", blob.digest, blob.size))
    return mix


async def _download(client: httpx.AsyncClient, path: str) -> tuple[int, str, int]:
    sha = hashlib.sha256()
    size = 0
    async with client.stream("GET", path) as resp:
        async for chunk in resp.aiter_raw():
            sha.update(chunk)
            size += len(chunk)
        return resp.status_code, "sha256:" + sha.hexdigest(), size


async def _burst(node: LocalNode) -> dict[str, float]:
    mix = blob_mix(node)
    blobs = [mix[i % len(mix)] for i in range(BLOB_DOWNLOADS)]
    heads = [
        ("/v2/library/nginx/manifests/1.25?ns=docker.io", DIGESTS["I"], len(BLOBS["I"])),
        (f"/v2/library/nginx/manifests/{DIGESTS['M']}?ns=docker.io", DIGESTS["M"], 399),
    ]
    limits = httpx.Limits(
        max_connections=MANIFEST_HEADS + BLOB_DOWNLOADS, max_keepalive_connections=0
    )
    timeout = httpx.Timeout(60.0, connect=30.0, pool=60.0)
    figures: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=node.url, limits=limits, timeout=timeout) as client:
        start = time.monotonic()
        results = await asyncio.gather(*(_download(client, p) for p, _, _ in blobs))
        figures["blob_seconds"] = time.monotonic() - start
        figures["blob_bytes"] = sum(r[2] for r in results)
        assert results == [(200, d, s) for _, d, s in blobs]

        start = time.monotonic()
        answers = await asyncio.gather(
            *(client.head(heads[i % 2][0]) for i in range(MANIFEST_HEADS))
        )
        figures["head_seconds"] = time.monotonic() - start
        for i, resp in enumerate(answers):
            _, digest, size = heads[i % 2]
            assert resp.status_code == 200, resp.status_code
            assert resp.headers["docker-content-digest"] == digest
            assert resp.headers["content-length"] == str(size)
            assert resp.content == b""
    return figures


def test_load_blobs_and_heads_bounded_memory_no_fd_leak(local_node: LocalNode) -> None:
    proc = local_node.spegel.proc
    assert proc is not None
    pid = proc.pid
    # Warm up (lazy imports, first connections) so the baseline is the steady state.
    with httpx.Client(base_url=local_node.url, timeout=10) as c:
        for path, _, _ in blob_mix(local_node)[:3]:
            assert c.get(path).status_code == 200
    time.sleep(0.3)
    fds_before = fd_count(pid)
    rss_before = status_kib(pid, "VmRSS")
    with PeakRss(pid, limit=120) as meter:
        figures = asyncio.run(asyncio.wait_for(_burst(local_node), 120))
    settled = wait_until(lambda: fd_count(pid) <= fds_before + FD_SLACK, 15, every=0.2)
    fds_after = fd_count(pid)
    print(
        f"\nload: {BLOB_DOWNLOADS} concurrent blob GETs ({figures['blob_bytes'] / 2**20:.1f} MiB) "
        f"in {figures['blob_seconds']:.2f}s, {MANIFEST_HEADS} concurrent manifest HEADs in "
        f"{figures['head_seconds']:.2f}s; RSS {rss_before / 1024:.0f} MiB before, peak "
        f"{meter.peak_kib / 1024:.0f} MiB (VmHWM {meter.hwm_kib / 1024:.0f} MiB); "
        f"fds {fds_before} before, {fds_after} after"
    )
    assert proc.poll() is None
    assert meter.peak_kib / 1024 < RSS_LIMIT_MIB
    assert settled is not None, f"fds {fds_after} > {fds_before} + {FD_SLACK}: leaked"
