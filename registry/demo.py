"""`make demo`: a 3-node local cluster pulling a real image through peers.

1. Start an upstream registry and 3 nodes (containerd + our configuration + our registry).
2. Push a freshly built multi-layer image upstream; node 1 pulls it through the kubelet's
   path (CRI PullImage), from upstream.
3. Stop the upstream registry; nodes 2 and 3 pull the same image: only peers can serve it.
4. Print which peer served each blob, bytes and time, and the live graph URL; keep running
   until Ctrl-C (``DEMO_KEEP=0`` exits at once).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from registry.containerd.client import ContainerdClient
from registry.devcluster.cluster import ClusterNode, LocalCluster, mirrored_transfers
from registry.devcluster.images import Image, ImageBuilder


def say(text: str = "") -> None:
    print(text, flush=True)


async def cri_pull(node: ClusterNode, image: str) -> tuple[str, float]:
    client = ContainerdClient(str(node.containerd.sock))
    start = time.monotonic()
    try:
        ref = await client.cri_pull(image)
    finally:
        await client.close()
    return ref, time.monotonic() - start


def report(node: ClusterNode, image: Image, names: dict[str, str]) -> None:
    transfers = [t for t in mirrored_transfers(node.spegel.log()) if t.get("method") == "GET"]
    blobs = {b.digest: b for b in [*image.layers, *image.configs, *image.manifests, image.top]}
    say(f"  {'content':<14} {'digest':<20} {'served by':<22} {'bytes':>10} {'ms':>8} {'MB/s':>8}")
    for t in transfers:
        key = str(t["key"])
        blob = blobs.get(key)
        what = "tag" if not key.startswith("sha256:") else _kind(blob, image)
        seconds = float(t["duration"]) or 1e-9
        size = int(t["bytes"])
        peer = f"{names.get(str(t['peer']), '?')} ({t['peer']})"
        say(
            f"  {what:<14} {key[:19]:<20} {peer:<22} {size:>10} {seconds * 1000:>8.1f} "
            f"{size / seconds / 1e6:>8.1f}"
        )


def _kind(blob: object, image: Image) -> str:
    if blob is image.top:
        return "index/manifest"
    if blob in image.manifests:
        return "manifest"
    if blob in image.configs:
        return "config"
    return "layer"


def main() -> int:
    # SIGTERM (e.g. from `timeout`) unwinds through the cleanup below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    base = Path(tempfile.mkdtemp(prefix="spegel-demo-", dir="/tmp"))
    cluster = LocalCluster(base, size=3)
    say(f"spegel-py demo: 3 nodes on 127.0.0.11-13, files under {base}")
    try:
        start = time.monotonic()
        cluster.start()
        say(
            f"cluster up in {time.monotonic() - start:.1f}s; upstream registry at "
            f"{cluster.upstream_addr}"
        )
        image = cluster.build_images(ImageBuilder(base / "images"))[0]
        cluster.push([image])
        total = sum(layer.size for layer in image.layers)
        say(f"pushed {image.name} upstream: {len(image.layers)} layers, {total / 1e6:.1f} MB")
        names = {n.host: n.name for n in cluster.nodes}
        assert cluster.upstream is not None
        before = len(cluster.upstream.access_log())
        ref, seconds = asyncio.run(cri_pull(cluster.nodes[0], image.name))
        first = len(cluster.upstream.access_log()) - before
        say(
            f"\nnode1: CRI PullImage {image.name} -> {ref[:19]} in {seconds:.2f}s "
            f"(from upstream: {first} upstream requests)"
        )
        time.sleep(1.0)  # let node1 advertise what it just pulled
        cluster.upstream.stop()
        say("upstream registry stopped: from now on only peers can serve the image")
        after_first = len(cluster.upstream.access_log())
        ok = True
        for node in cluster.nodes[1:]:
            try:
                ref, seconds = asyncio.run(cri_pull(node, image.name))
                say(f"\n{node.name}: CRI PullImage -> {ref[:19]} in {seconds:.2f}s")
                report(node, image, names)
            except Exception as err:
                ok = False
                say(f"\n{node.name}: pull FAILED: {err}")
        upstream_after = len(cluster.upstream.access_log()) - after_first
        say(f"\nupstream requests after the first pull: {upstream_after}")
        say(
            f"live graph: {cluster.nodes[0].spegel.admin_url}/visualize/  "
            f"(node2: {cluster.nodes[1].spegel.admin_url}/visualize/)"
        )
        say(f"metrics:    {cluster.nodes[0].spegel.admin_url}/metrics")
        if os.environ.get("DEMO_KEEP", "1") != "0":
            say("\nrunning until Ctrl-C (DEMO_KEEP=0 exits at once)")
            try:
                signal.pause()
            except (KeyboardInterrupt, SystemExit):
                pass
        return 0 if ok and upstream_after == 0 else 1
    finally:
        say("stopping the cluster")
        cluster.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
