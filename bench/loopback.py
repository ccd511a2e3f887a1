"""Cases 1-3 share one set-up on loopback addresses (127.0.5.x, nothing else).

Node A and node B: each a real containerd plus a spegel-py node (``manage.py registry`` with
its routing process), bootstrapped over HTTP. B's content store holds the benchmark blobs and
a small image. Baselines on the same machine: the Debian CNCF registry (docker-registry)
holding the same blobs, and ``python -m http.server`` serving the same files.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import stop_pid, wait_until
from registry.devcluster.cluster import common_free_port
from registry.devcluster.daemons import Containerd, DistributionRegistry, free_port, port_open
from registry.devcluster.images import OCI_LAYER, Image, ImageBuilder, write_oci_archive
from registry.devcluster.images import Blob as ImageBlob
from registry.devcluster.spegel import SpegelNode

HOST_A, HOST_B, HOST_BASE = "127.0.5.11", "127.0.5.12", "127.0.5.1"
IMAGE_REGISTRY = "127.0.5.1:5999"  # a name only: no node ever contacts an upstream here
REPO = "bench/blob"


@dataclass
class Blob:
    path: Path
    digest: str
    size: int


@dataclass
class LoopbackSetup:
    base: Path
    containerd: dict[str, Containerd] = field(default_factory=dict)
    nodes: dict[str, SpegelNode] = field(default_factory=dict)
    registry: DistributionRegistry | None = None
    http_server: subprocess.Popen[bytes] | None = None
    http_port: int = 0
    sendfile_server: subprocess.Popen[bytes] | None = None
    sendfile_port: int = 0
    files: Path | None = None
    image: Image | None = None

    def start(self) -> LoopbackSetup:
        self.base.mkdir(parents=True, exist_ok=True)
        hosts = [HOST_A, HOST_B]
        reg_port = common_free_port(hosts)
        router_port = common_free_port(hosts, {reg_port})
        boot_port = common_free_port(hosts, {reg_port, router_port})
        for name, host in (("a", HOST_A), ("b", HOST_B)):
            ctrd = Containerd(self.base / name / "containerd").start()
            self.containerd[name] = ctrd
            flags = [
                "--bootstrap-kind=http",
                f"--http-bootstrap-addr={host}:{boot_port}",
                f"--http-bootstrap-url=http://{HOST_A}:{boot_port}/",
                "--log-level=WARNING",
            ]
            node = SpegelNode(
                self.base / name / "spegel",
                ctrd,
                host=host,
                registry_port=reg_port,
                metrics_port=free_port(host),
                router_port=router_port,
                flags=flags,
            )
            self.nodes[name] = node
            node.start(timeout=90)
        for node in self.nodes.values():
            wait_until(node.ready, 60, f"node {node.host} ready", interval=0.2)
        self.registry = DistributionRegistry(self.base / "registry", host=HOST_BASE).start()
        self.files = self.base / "files"
        self.files.mkdir(exist_ok=True)
        self.http_port = free_port(HOST_BASE)
        self.http_server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.http_port), "--bind", HOST_BASE],
            cwd=self.files,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.sendfile_port = free_port(HOST_BASE)
        self.sendfile_server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sendfile_server",
                str(self.sendfile_port),
                HOST_BASE,
                str(self.files),
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(HOST_BASE, self.http_port), 20, "http.server")
        wait_until(lambda: port_open(HOST_BASE, self.sendfile_port), 20, "sendfile server")
        return self

    # -- content --------------------------------------------------------------------------

    def add_blobs(self, blobs: list[Blob], builder: ImageBuilder) -> None:
        """Into B's store, docker-registry and the file servers' directory.

        containerd 1.6 sends no content-create event for ``ctr content ingest``, so the blobs
        go in as the layers of an image (imported without unpacking): B then advertises them.
        """
        layers = [
            ImageBlob(OCI_LAYER, path=b.path, digest=b.digest, size=b.size, diff_id=b.digest)
            for b in blobs
        ]
        config = builder.config("amd64", layers)
        manifest = builder.manifest(config, layers)
        image = Image(f"{IMAGE_REGISTRY}/{REPO}:blobs", top=manifest)
        image.manifests, image.configs, image.layers = [manifest], [config], layers
        for item in (manifest, config, *layers):
            image.blobs[item.digest] = item
        archive = write_oci_archive([image], self.base / "blobs.tar")
        self.containerd["b"].ctr("images", "import", "--no-unpack", str(archive))
        archive.unlink()
        assert self.registry is not None and self.files is not None
        for blob in blobs:
            push_blob(self.registry.url, REPO, blob)
            link = self.files / blob.digest[7:]
            if not link.exists():
                link.hardlink_to(blob.path)

    def add_image(self, builder: ImageBuilder) -> Image:
        """A small image imported into B (manifest latency, case 3)."""
        image = builder.image(f"{IMAGE_REGISTRY}/bench/app:v1", [64 * 1024, 4096])
        archive = write_oci_archive([image], self.base / "app.tar")
        self.containerd["b"].import_archive(archive)
        self.image = image
        return image

    def wait_mirrorable(self, path: str, timeout: float = 30.0) -> None:
        """Until node A finds ``path`` through its peer (records reached A's router)."""
        url = self.nodes["a"].url + path
        wait_until(
            lambda: httpx.head(url, timeout=5).status_code == 200, timeout, f"A mirrors {path}"
        )

    # -- urls -----------------------------------------------------------------------------

    def blob_urls(self, blob: Blob) -> dict[str, str]:
        assert self.registry is not None
        path = f"/v2/{REPO}/blobs/{blob.digest}"
        return {
            "spegel": self.nodes["b"].url + path,
            "docker_registry": self.registry.url + path,
            "http_server": f"http://{HOST_BASE}:{self.http_port}/{blob.digest[7:]}",
            "sendfile": f"http://{HOST_BASE}:{self.sendfile_port}/{blob.digest[7:]}",
            "mirror_via_a": self.nodes["a"].url + path,
        }

    # -- teardown -------------------------------------------------------------------------

    def stop(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.stop()
        stop_pid(self.http_server)
        stop_pid(self.sendfile_server)
        if self.registry is not None:
            self.registry.stop()
        for ctrd in self.containerd.values():
            with contextlib.suppress(Exception):
                ctrd.cleanup()


def push_blob(base_url: str, repo: str, blob: Blob) -> None:
    """Monolithic upload with curl streaming the file (the registry stores it as pushed)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            return
        start = client.post(f"/v2/{repo}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["Location"]
    if location.startswith("/"):
        location = base_url + location
    sep = "&" if "?" in location else "?"
    subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            str(blob.path),
            f"{location}{sep}digest={blob.digest}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def settle(seconds: float) -> None:
    time.sleep(seconds)
