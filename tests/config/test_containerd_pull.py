"""containerd really uses what ``configuration`` writes: CRI PullImage through a real daemon.

Upstream and mirror are Debian ``docker-registry`` processes and a tiny request recorder, all on
127.0.0.1; image names use the upstream's loopback address so a fallback can never leave the
machine.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from registry.containerd.client import ContainerdClient
from registry.containerd.verify import verify_cri_status
from registry.devcluster.daemons import Containerd, DistributionRegistry, free_port
from registry.devcluster.images import Image, ImageBuilder
from registry.devcluster.push import push_image

pytestmark = pytest.mark.slow


@dataclass
class Recorder:
    """An HTTP server that records every request line and answers 404, like an empty mirror."""

    server: ThreadingHTTPServer
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @classmethod
    def start(cls) -> Recorder:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not here"}]}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(server, seen)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    base: Path
    upstream: DistributionRegistry
    mirror: DistributionRegistry
    recorder: Recorder
    containerd: Containerd
    builder: ImageBuilder

    @property
    def hosts_dir(self) -> Path:
        assert self.containerd.config_path is not None
        return Path(self.containerd.config_path)

    def configure(self, *targets: str) -> None:
        call_command(
            "configuration",
            f"--containerd-registry-config-path={self.hosts_dir}",
            "--mirrored-registries",
            self.upstream.url,
            "--mirror-targets",
            *targets,
        )

    def image(self, tag: str, *registries: DistributionRegistry) -> Image:
        image = self.builder.image(f"{self.upstream.addr}/test/app:{tag}", [32 * 1024, 4096])
        for registry in registries:
            push_image(registry.url, image)
        return image

    async def pull(self, image: Image) -> Pull:
        """CRI PullImage, with the registries' access-log lines written meanwhile."""
        up_mark, mirror_mark = len(self.upstream.access_log()), len(self.mirror.access_log())
        self.recorder.requests.clear()
        client = ContainerdClient(str(self.containerd.sock))
        try:
            start = time.monotonic()
            ref = await client.cri_pull(image.name, timeout=60)
            seconds = time.monotonic() - start
        finally:
            await client.close()
        return Pull(
            ref,
            seconds,
            upstream=_paths(self.upstream.access_log()[up_mark:], image),
            mirror=_paths(self.mirror.access_log()[mirror_mark:], image),
            recorder=list(self.recorder.requests),
        )


@dataclass
class Pull:
    ref: str
    seconds: float
    upstream: list[str]  # method and path, for this image only
    mirror: list[str]
    recorder: list[str]  # full request lines, query included


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="spc-", dir="/tmp"))  # short: unix socket path limit
    upstream = DistributionRegistry(base / "up")
    mirror = DistributionRegistry(base / "mirror")
    containerd = Containerd(base / "ctrd", config_path=base / "certs.d")
    recorder = Recorder.start()
    try:
        upstream.start()
        mirror.start()
        containerd.start()
        yield Stack(base, upstream, mirror, recorder, containerd, ImageBuilder(base / "img"))
    finally:
        containerd.cleanup()
        upstream.stop()
        mirror.stop()
        recorder.stop()
        shutil.rmtree(base, ignore_errors=True)


def _paths(lines: list[str], image: Image) -> list[str]:
    """Request lines (method and path, no query) that concern ``image``."""
    digests = set(image.blobs)
    out = []
    for line in lines:
        method, path = line.split()[:2]
        path = path.split("?")[0]
        if path.endswith(f"/manifests/{image.tag}") or path.rsplit("/", 1)[-1] in digests:
            out.append(f"{method} {path}")
    return out


async def test_cri_status_accepts_the_hosts_dir(stack: Stack) -> None:
    client = ContainerdClient(str(stack.containerd.sock))
    try:
        info = await client.cri_status()
    finally:
        await client.close()
    assert verify_cri_status(info, str(stack.hosts_dir)).ok
    wrong = verify_cri_status(info, "/etc/containerd/certs.d")
    assert any("does not include" in e for e in wrong.errors)


async def test_mirror_asked_first_then_fallback_on_404(stack: Stack) -> None:
    image = stack.image("v1", stack.upstream)
    stack.configure(stack.recorder.url)
    pull = await stack.pull(image)
    print(f"\nCRI pull, mirror answers 404: {pull.seconds:.3f}s; mirror saw {pull.recorder}")
    assert pull.ref.startswith("sha256:")
    ns = f"?ns={stack.upstream.addr.replace(':', '%3A')}"
    assert pull.recorder[0] == f"HEAD /v2/test/app/manifests/v1{ns}"
    assert all(line.endswith(ns) for line in pull.recorder), pull.recorder
    assert f"GET /v2/test/app/manifests/{image.digest}" in pull.upstream
    for layer in image.layers:
        assert f"GET /v2/test/app/blobs/{layer.digest}" in pull.upstream
    # Everything the upstream served was asked of the mirror first.
    asked = set(_paths(pull.recorder, image))
    for line in pull.upstream:
        assert line in asked, line


async def test_fallback_when_mirror_is_down(stack: Stack) -> None:
    image = stack.image("v2", stack.upstream)
    closed = f"127.0.0.1:{free_port()}"
    stack.configure(f"http://{closed}")
    log = stack.containerd.base / "containerd.log"
    log_mark = log.stat().st_size
    pull = await stack.pull(image)
    print(f"\nCRI pull, mirror down (connection refused): {pull.seconds:.3f}s")
    assert pull.ref.startswith("sha256:")
    assert pull.seconds < 10
    for layer in image.layers:
        assert f"GET /v2/test/app/blobs/{layer.digest}" in pull.upstream
    daemon_log = log.read_bytes()[log_mark:].decode(errors="replace")
    # containerd did try the dead mirror first.
    assert "trying next host" in daemon_log and closed in daemon_log


async def test_mirror_serves_in_target_order_upstream_untouched(stack: Stack) -> None:
    image = stack.image("v3", stack.upstream, stack.mirror)
    stack.configure(stack.recorder.url, stack.mirror.url)
    pull = await stack.pull(image)
    print(f"\nCRI pull, first target 404, second target holds the image: {pull.seconds:.3f}s")
    assert pull.ref.startswith("sha256:")
    assert pull.upstream == []
    assert f"GET /v2/test/app/manifests/{image.digest}" in pull.mirror
    for layer in image.layers:
        assert f"GET /v2/test/app/blobs/{layer.digest}" in pull.mirror
    # The first target was asked before the second one served.
    assert pull.recorder[0].startswith("HEAD /v2/test/app/manifests/v3?ns=")


async def test_default_hosts_without_server_mirrors_every_registry(stack: Stack) -> None:
    image = stack.image("v4", stack.upstream)
    call_command(
        "configuration",
        f"--containerd-registry-config-path={stack.hosts_dir}",
        "--mirrored-registries=_default",
        "--mirror-targets",
        stack.recorder.url,
    )
    assert sorted(p.name for p in stack.hosts_dir.iterdir()) == ["_backup", "_default"]
    pull = await stack.pull(image)
    print(f"\nCRI pull via _default/hosts.toml, mirror 404: {pull.seconds:.3f}s")
    assert pull.ref.startswith("sha256:")
    ns = f"?ns={stack.upstream.addr.replace(':', '%3A')}"
    assert pull.recorder[0] == f"HEAD /v2/test/app/manifests/v4{ns}"
    for layer in image.layers:
        assert f"GET /v2/test/app/blobs/{layer.digest}" in pull.upstream
