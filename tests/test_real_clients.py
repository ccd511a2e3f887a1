"""Real pull clients against the registry port: skopeo and containerd's own resolver."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from registry.devcluster.daemons import Containerd
from tests.conftest import LocalNode

pytestmark = pytest.mark.slow


def test_skopeo_copy_by_digest(local_node: LocalNode, tmp_path: Path) -> None:
    image = local_node.images["multi"]
    host = local_node.url.removeprefix("http://")
    dest = tmp_path / "layout"
    result = subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"docker://{host}/{image.repository}@{image.digest}",
            f"oci:{dest}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    index = json.loads((dest / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    for blob in image.blobs.values():
        path = dest / "blobs" / "sha256" / blob.digest.split(":")[1]
        assert path.exists(), blob.digest
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == blob.digest


def test_ctr_pull_through_mirror(local_node: LocalNode, workdir: Path) -> None:
    """A second containerd pulls through our registry as its mirror (hosts.toml)."""
    image = local_node.images["single"]
    hosts = workdir / "ctr-hosts" / image.registry
    hosts.mkdir(parents=True, exist_ok=True)
    # The upstream server (image.registry) does not exist: only the mirror can answer.
    (hosts / "hosts.toml").write_text(
        f'server = "http://{image.registry}"\n\n'
        f'[host."{local_node.url}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    second = Containerd(workdir / "n2").start()
    try:
        second.ctr("images", "pull", "--hosts-dir", str(workdir / "ctr-hosts"), image.name)
        listed = second.ctr("images", "ls", "-q")
        assert image.name in listed.split()
        for blob in image.blobs.values():
            info = second.ctr("content", "ls", "-q")
            assert blob.digest in info.split()
    finally:
        second.cleanup()
