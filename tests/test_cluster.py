"""The main job on a local 3-node cluster: real containerd, CRI pulls, libp2p, upstream registry."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from registry.containerd.client import ContainerdClient
from registry.devcluster.cluster import ClusterNode, LocalCluster, mirrored_transfers
from registry.devcluster.images import Image, ImageBuilder
from routing.client import P2PRouter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(workdir: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(workdir / "cluster", size=3, visualize=False)
    try:
        c.start()
        _CLUSTERS.append(c)
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def builder(workdir: Path) -> ImageBuilder:
    return ImageBuilder(workdir / "cluster-images", seed=5)


async def _pull(node: ClusterNode, ref: str, timeout: float = 60) -> str:
    client = ContainerdClient(str(node.containerd.sock))
    try:
        return await client.cri_pull(ref, timeout=timeout)
    finally:
        await client.close()


def pull(node: ClusterNode, ref: str, timeout: float = 60) -> str:
    return asyncio.run(_pull(node, ref, timeout))


def has_content(node: ClusterNode, image: Image) -> bool:
    listed = set(node.containerd.ctr("content", "ls", "-q").split())
    return all(b.digest in listed for b in [*image.layers, *image.configs, image.top])


def wait_advertised(
    node: ClusterNode, image: Image, seen_by: ClusterNode | None = None, timeout: float = 15
) -> None:
    """Until ``seen_by``'s router finds ``node`` for every key of the image's first platform
    within the default 20 ms lookup budget (the advertisement has propagated)."""
    keys = [
        f"{image.registry}/{image.repository}:{image.tag}",
        image.digest,
        image.manifests[0].digest,
        image.configs[0].digest,
        *[layer.digest for layer in image.layers[: len(image.layers) // len(image.manifests)]],
    ]
    observers = [seen_by] if seen_by else [n for n in cluster_nodes(node) if n is not node]

    async def known(observer: ClusterNode) -> bool:
        router = P2PRouter(str(observer.spegel.base / "data" / "router.sock"))
        try:
            for key in keys:
                hosts = [p.host async for p in router.resolve(key, 1, 0.02)]
                if node.host not in hosts:
                    return False
            return True
        finally:
            await router._disconnect()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(asyncio.run(known(o)) for o in observers):
            return
        time.sleep(0.1)
    raise TimeoutError(f"keys of {image.name} never propagated from {node.name}")


_CLUSTERS: list[LocalCluster] = []


def cluster_nodes(node: ClusterNode) -> list[ClusterNode]:
    for c in _CLUSTERS:
        if node in c.nodes:
            return c.nodes
    return [node]


def requests_for(lines: list[str], repository: str) -> list[str]:
    return [line for line in lines if f"/v2/{repository}/" in line]


def test_pull_on_b_after_a_is_served_by_peers_not_upstream(cluster, builder) -> None:
    a, b = cluster.nodes[0], cluster.nodes[1]
    image = builder.image(f"{cluster.upstream_addr}/it/peer:v1", [3 << 20, 1 << 20])
    cluster.push([image])
    pull(a, image.name)
    assert requests_for(cluster.upstream.access_log(), image.repository)  # A used upstream
    wait_advertised(a, image)
    before = len(cluster.upstream.access_log())
    ref = pull(b, image.name)
    assert ref == image.configs[0].digest or ref.startswith("sha256:")
    assert has_content(b, image)
    assert requests_for(cluster.upstream.access_log()[before:], image.repository) == []
    served = {str(t["key"]): str(t["peer"]) for t in mirrored_transfers(b.spegel.log())}
    for layer in image.layers:
        assert served.get(layer.digest) == a.host


def test_fallback_to_upstream_when_nobody_has_it_is_fast(cluster, builder) -> None:
    c = cluster.nodes[2]
    image = builder.image(f"{cluster.upstream_addr}/it/fresh:v1", [1 << 20])
    cluster.push([image])
    log_before = len(c.spegel.log().splitlines())
    start = time.monotonic()
    pull(c, image.name)
    elapsed = time.monotonic() - start
    assert has_content(c, image)
    assert requests_for(cluster.upstream.access_log(), image.repository)
    lines = c.spegel.log().splitlines()[log_before:]
    misses = [ln for ln in lines if '"status": 404' in ln and image.repository in ln]
    assert misses, "containerd asked the mirror first"
    for line in misses:
        latency = float(re.search(r'"latency": ([0-9.e-]+)', line).group(1))
        assert latency < 1.0, line
    assert elapsed < 10


@pytest.mark.parametrize("form", ["tag", "digest", "tag+digest"])
def test_tag_digest_and_tag_plus_digest_pulls(cluster, builder, form: str) -> None:
    a, b = cluster.nodes[0], cluster.nodes[1]
    image = builder.image(
        f"{cluster.upstream_addr}/it/forms-{form.replace('+', '-')}:v1",
        [512 << 10],
        platforms=["amd64", "arm64"],
    )
    cluster.push([image])
    pull(a, image.name)
    wait_advertised(a, image)
    repo = image.name.rsplit(":", 1)[0]
    ref = {
        "tag": image.name,
        "digest": f"{repo}@{image.digest}",
        "tag+digest": f"{image.name}@{image.digest}",
    }[form]
    before = len(cluster.upstream.access_log())
    pull(b, ref)
    new = requests_for(cluster.upstream.access_log()[before:], image.repository)
    assert new == [], new
    listed = set(b.containerd.ctr("content", "ls", "-q").split())
    assert image.digest in listed


def test_non_existent_tag_fails_as_without_us(cluster) -> None:
    b = cluster.nodes[1]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        pull(b, f"{cluster.upstream_addr}/it/peer:does-not-exist", timeout=30)
    assert "not found" in str(err.value.details()).lower()


def test_peer_killed_mid_blob_resumes_from_another_peer(workdir: Path, builder) -> None:
    """A and C hold a large layer and serve it slowly; the serving one dies mid-blob."""
    c3 = LocalCluster(
        workdir / "cluster-kill", size=3, visualize=False, flags=["--blob-speed=24MBps"]
    )
    try:
        c3.start()
        _CLUSTERS.append(c3)
        a, b, c = c3.nodes
        image = builder.image(f"{c3.upstream_addr}/it/big:v1", [72 << 20])
        c3.push([image])
        pull(a, image.name)
        pull(c, image.name)
        wait_advertised(a, image)
        wait_advertised(c, image)
        c3.upstream.stop()  # only peers can help from now on

        async def scenario() -> str:
            task = asyncio.create_task(_pull(b, image.name, timeout=120))
            victim = None
            deadline = time.monotonic() + 20
            busy: set[int] = set()
            while victim is None and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                # Busy in two polls in a row: a long blob transfer, not a quick manifest.
                now_busy = {node.index for node in (a, c) if serving_blob(node)}
                both = busy & now_busy
                victim = next((n for n in (a, c) if n.index in both), None)
                busy = now_busy
            assert victim is not None, "no peer started serving the layer"
            victim.spegel.kill()
            return await task

        asyncio.run(scenario())
        assert has_content(b, image)
        log = b.spegel.log()
        assert "peer failed mid-blob, resuming" in log
        served = [t for t in mirrored_transfers(log) if t["key"] == image.layers[0].digest]
        assert served and served[-1]["bytes"] == image.layers[0].size
    finally:
        c3.cleanup()


def serving_blob(node: ClusterNode) -> bool:
    try:
        text = httpx.get(f"{node.spegel.admin_url}/metrics", timeout=1).text
    except httpx.HTTPError:
        return False
    match = re.search(r'^http_requests_inflight\{handler="/v2/\*"\} ([0-9.]+)', text, re.M)
    return bool(match and float(match.group(1)) >= 1)
