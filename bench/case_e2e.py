"""Case 5: whole-image pulls through containerd's real CRI path, P2P versus upstream.

Namespaces (bench.netns): ``up`` holds the upstream docker-registry behind a link shaped to
200 Mbit/s (tc tbf, both directions) with 20 ms added round-trip delay (bench.delayproxy,
netem is not in this kernel); ``a``, ``b`` and ``c`` are nodes on fast bridge links.
A and B run containerd plus spegel-py; A holds the images (imported from an archive, so its
copy never crossed the link). C runs containerd alone and is the baseline (no Spegel).
Each image is pulled by C from upstream and by B through its own spegel-py, which finds A.
Every repetition uses a distinct image (nothing cached anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import MiB, median, stop_pid, wait_until
from bench.netns import Lab
from bench.nsnodes import NsContainerd, start_delay_proxy, start_registry, start_spegel
from registry.containerd.client import ContainerdClient
from registry.devcluster.cluster import configure
from registry.devcluster.images import Image, ImageBuilder, write_oci_archive
from registry.devcluster.spegel import REPO_ROOT, SpegelNode

UPSTREAM_OCTET, NODE_OCTETS = 2, {"a": 11, "b": 12, "c": 13}
UPSTREAM = f"10.200.0.{UPSTREAM_OCTET}:5000"
REG_PORT, ROUTER_PORT, BOOT_PORT, ADMIN_PORT = 5000, 5001, 5002, 9090
REFERENCE = {"10MB-1": 81.25, "100MB-4": 68.21, "1GB-4": 29.89}


@dataclass
class ImageSpec:
    label: str  # e.g. 10MB-1
    layer_sizes: list[int]
    reps: int


def spec(label: str, total: int, layers: int, reps: int) -> ImageSpec:
    return ImageSpec(label, [total // layers] * layers, reps)


class E2ELab:
    def __init__(self, base: Path, rate: str, delay: float) -> None:
        self.base = base
        self.rate, self.delay = rate, delay
        self.lab = Lab()
        self.procs: list[Any] = []
        self.ctrd: dict[str, NsContainerd] = {}
        self.spegel: dict[str, SpegelNode] = {}

    def start(self) -> None:
        self.lab.create({"up": UPSTREAM_OCTET, **NODE_OCTETS})
        self.lab.shape("up", self.rate)
        up = self.base / "upstream"
        up.mkdir(parents=True)
        self.procs.append(start_registry(self.lab, "up", up, "127.0.0.1:5001"))
        proxy = start_delay_proxy(
            self.lab, "up", UPSTREAM, "127.0.0.1:5001", self.delay / 2, up / "proxy.log"
        )
        self.procs.append(proxy)
        wait_until(
            lambda: self.lab.http_status("c", f"http://{UPSTREAM}/v2/") == 200, 20, "link", 0.2
        )
        for name, octet in NODE_OCTETS.items():
            certs = self.base / name / "certs.d"
            host = f"10.200.0.{octet}"
            if name == "c":
                hosts = certs / UPSTREAM
                hosts.mkdir(parents=True)
                (hosts / "hosts.toml").write_text(
                    f'server = "http://{UPSTREAM}"\n\n[host."http://{UPSTREAM}"]\n'
                    '  capabilities = ["pull", "resolve"]\n'
                )
            else:
                configure(certs, [f"http://{UPSTREAM}"], [f"http://{host}:{REG_PORT}"])
            ctrd = NsContainerd(self.base / name / "ctrd", config_path=certs)
            self.ctrd[name] = ctrd.start_ns(self.lab, name)
        for name in ("a", "b"):
            host = f"10.200.0.{NODE_OCTETS[name]}"
            node = SpegelNode(
                self.base / name / "spegel",
                self.ctrd[name],
                host=host,
                registry_port=REG_PORT,
                metrics_port=ADMIN_PORT,
                router_port=ROUTER_PORT,
                flags=[
                    f"--mirrored-registries=http://{UPSTREAM}",
                    "--bootstrap-kind=http",
                    f"--http-bootstrap-addr={host}:{BOOT_PORT}",
                    f"--http-bootstrap-url=http://10.200.0.{NODE_OCTETS['a']}:{BOOT_PORT}/",
                ],
            )
            self.spegel[name] = start_spegel(self.lab, name, node)

    def seed(self, images: list[Image]) -> None:
        """Push to upstream (from inside its namespace) and import into A's store."""
        blob = self.base / "images.pickle"
        blob.write_bytes(pickle.dumps(images))
        self.lab.run(
            "up",
            [sys.executable, "-m", "bench.nspush", str(blob), "http://127.0.0.1:5001"],
            check=True,
            capture_output=True,
            timeout=600,
            cwd=REPO_ROOT,
        )
        archive = write_oci_archive(images, self.base / "images.tar")
        self.ctrd["a"].ctr("images", "import", "--no-unpack", str(archive))
        archive.unlink()
        ns = quote(UPSTREAM, safe="")
        node_b = self.spegel["b"]
        for image in images:
            url = f"{node_b.url}/v2/{image.repository}/manifests/{image.tag}?ns={ns}"
            wait_until(
                lambda url=url: self.lab.http_status("b", url, "HEAD") == 200,
                60,
                f"B finds {image.name} at A",
                0.2,
            )

    def upstream_requests(self) -> int:
        log = self.base / "upstream" / "registry.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(1 for line in text.splitlines() if '"GET /v2/bench' in line)

    def stop(self) -> None:
        for node in self.spegel.values():
            with contextlib.suppress(Exception):
                node.stop()
        for ctrd in self.ctrd.values():
            with contextlib.suppress(Exception):
                ctrd.stop()
        for proc in self.procs:
            stop_pid(proc)
        # Anything still inside a namespace was started by us: stop it by PID.
        for pid in self.lab.pids():
            with contextlib.suppress(ProcessLookupError):
                import os
                import signal

                os.kill(pid, signal.SIGKILL)
        self.lab.delete()
        for ctrd in self.ctrd.values():
            with contextlib.suppress(Exception):
                ctrd.cleanup()


async def _pull(sock: Path, ref: str) -> float:
    client = ContainerdClient(str(sock))
    try:
        start = time.perf_counter()
        await client.cri_pull(ref, timeout=600)
        return time.perf_counter() - start
    finally:
        await client.close()


def run(
    base: Path, specs: list[ImageSpec], rate: str = "200mbit", delay: float = 0.020
) -> dict[str, Any]:
    lab = E2ELab(base, rate, delay)
    builder = ImageBuilder(base / "build", seed=5)
    try:
        t0 = time.monotonic()
        lab.start()
        setup_seconds = time.monotonic() - t0
        images = {
            s.label: [
                builder.image(f"{UPSTREAM}/bench/{s.label.lower()}:r{i}", s.layer_sizes)
                for i in range(s.reps)
            ]
            for s in specs
        }
        t1 = time.monotonic()
        lab.seed([img for imgs in images.values() for img in imgs])
        seed_seconds = time.monotonic() - t1
        results: dict[str, Any] = {}
        for s in specs:
            base_times, p2p_times = [], []
            upstream_during_p2p = 0
            for i, image in enumerate(images[s.label]):
                order = ["c", "b"] if i % 2 == 0 else ["b", "c"]
                for who in order:
                    before = lab.upstream_requests()
                    seconds = asyncio.run(_pull(lab.ctrd[who].sock, image.name))
                    if who == "c":
                        base_times.append(seconds)
                    else:
                        p2p_times.append(seconds)
                        upstream_during_p2p += lab.upstream_requests() - before
            b, p = median(base_times), median(p2p_times)
            results[s.label] = {
                "layers": len(s.layer_sizes),
                "image_bytes": sum(bl.size for bl in images[s.label][0].layers),
                "reps": s.reps,
                "upstream_seconds": base_times,
                "p2p_seconds": p2p_times,
                "upstream_median_s": b,
                "p2p_median_s": p,
                "faster_percent": 100.0 * (b - p) / b if b else 0.0,
                "speedup_x": b / p if p else 0.0,
                "upstream_blob_gets_during_p2p": upstream_during_p2p,
                "reference_faster_percent": REFERENCE.get(s.label),
            }
        return {
            "link": {"rate": rate, "rtt_delay_ms": delay * 1000, "shaping": "tc tbf + delay proxy"},
            "setup_seconds": round(setup_seconds, 1),
            "seed_seconds": round(seed_seconds, 1),
            "images": results,
        }
    finally:
        lab.stop()


def mib(n: float) -> int:
    return int(n * MiB)
