"""A local multi-node cluster on one machine, for the demo, tests and benchmarks.

Node ``i`` lives on loopback address ``127.0.0.(10+i)``: its own containerd (own root, socket
and ``config_path``), the hosts.toml written by our ``configuration`` command, and our
``registry`` command. One CNCF registry on 127.0.0.1 plays the upstream and holds test images
the launcher builds itself. Everything started is stopped by its PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from registry.devcluster.daemons import Containerd, DistributionRegistry, free_port, port_open
from registry.devcluster.images import Image, ImageBuilder
from registry.devcluster.push import push_image
from registry.devcluster.spegel import REPO_ROOT, SpegelNode

NODE_BASE = 10


def node_host(index: int) -> str:
    return f"127.0.0.{NODE_BASE + index}"


def common_free_port(hosts: Sequence[str], avoid: set[int] | None = None) -> int:
    """A port free on every host (the registry and router ports are cluster-wide)."""
    avoid = avoid or set()
    for _ in range(200):
        port = free_port(hosts[0])
        if port not in avoid and not any(port_open(h, port) for h in hosts):
            return port
    raise RuntimeError("no common free port")


@dataclass
class ClusterNode:
    index: int
    host: str
    containerd: Containerd
    spegel: SpegelNode

    @property
    def name(self) -> str:
        return f"node{self.index}"


@dataclass
class LocalCluster:
    base: Path
    size: int = 3
    flags: list[str] = field(default_factory=list)
    visualize: bool = True
    upstream: DistributionRegistry | None = None
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = Path(self.base)

    @property
    def upstream_addr(self) -> str:
        assert self.upstream is not None
        return self.upstream.addr

    def start(self) -> LocalCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        self.upstream = DistributionRegistry(self.base / "upstream").start()
        hosts = [node_host(i) for i in range(1, self.size + 1)]
        registry_port = common_free_port(hosts)
        router_port = common_free_port(hosts, {registry_port})
        bootstrap_port = common_free_port(hosts, {registry_port, router_port})
        try:
            for i, host in enumerate(hosts, start=1):
                self.nodes.append(
                    self._start_node(i, host, registry_port, router_port, bootstrap_port)
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(
        self, index: int, host: str, registry_port: int, router_port: int, bootstrap_port: int
    ) -> ClusterNode:
        base = self.base / f"node{index}"
        certs = base / "certs.d"
        configure(
            certs,
            mirrored=[f"http://{self.upstream_addr}"],
            targets=[f"http://{host}:{registry_port}"],
        )
        ctrd = Containerd(base / "containerd", config_path=certs).start()
        flags = [
            "--bootstrap-kind=http",
            f"--http-bootstrap-addr={host}:{bootstrap_port}",
            f"--http-bootstrap-url=http://{node_host(1)}:{bootstrap_port}/",
            f"--mirrored-registries=http://{self.upstream_addr}",
            *(["--visualize-enabled=true"] if self.visualize else []),
            *self.flags,
        ]
        spegel = SpegelNode(
            base / "spegel",
            ctrd,
            host=host,
            registry_port=registry_port,
            metrics_port=free_port(host),
            router_port=router_port,
            flags=flags,
        )
        spegel.start()
        return ClusterNode(index, host, ctrd, spegel)

    def push(self, images: Sequence[Image]) -> None:
        assert self.upstream is not None
        for image in images:
            push_image(self.upstream.url, image)

    def build_images(self, builder: ImageBuilder, repo: str = "demo/app") -> list[Image]:
        return [
            builder.image(
                f"{self.upstream_addr}/{repo}:v1",
                [8 * 1024 * 1024, 4 * 1024 * 1024, 2 * 1024 * 1024, 256 * 1024],
            )
        ]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.spegel.stop()
            node.containerd.stop()
        if self.upstream is not None:
            self.upstream.stop()

    def cleanup(self) -> None:
        self.stop()
        for node in self.nodes:
            node.containerd.cleanup()


def configure(certs: Path, mirrored: list[str], targets: list[str]) -> None:
    """Write containerd's hosts.toml with our own ``configuration`` command."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "manage.py"),
            "configuration",
            f"--containerd-registry-config-path={certs}",
            "--mirrored-registries",
            *mirrored,
            "--mirror-targets",
            *targets,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"configuration failed: {result.stderr.strip()}")


def mirrored_transfers(log_text: str) -> list[dict[str, object]]:
    """The ``mirrored`` log lines of a node: which peer served which key, bytes, duration."""
    out = []
    for line in log_text.splitlines():
        if '"mirrored"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == "mirrored":
            out.append(record)
    return out
