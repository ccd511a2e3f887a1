"""Blobs streamed over containerd's gRPC Read when no content directory is given."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from registry.devcluster.spegel import SpegelNode
from tests.conftest import LocalNode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def grpc_node(local_node: LocalNode, workdir: Path):
    node = SpegelNode(workdir / "grpc-node", local_node.containerd, direct_content=False)
    node.start()
    yield node
    node.stop()


def test_full_blob_over_grpc(local_node: LocalNode, grpc_node: SpegelNode) -> None:
    layer = local_node.images["big"].layers[0]
    sha = hashlib.sha256()
    size = 0
    with httpx.stream("GET", f"{grpc_node.url}/v2/test/big/blobs/{layer.digest}") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-length"] == str(layer.size)
        for chunk in resp.iter_bytes():
            sha.update(chunk)
            size += len(chunk)
    assert size == layer.size
    assert "sha256:" + sha.hexdigest() == layer.digest


@pytest.mark.parametrize(("first", "last"), [(0, 0), (1000, 1_999_999), (3_000_000, None)])
def test_ranges_over_grpc(local_node: LocalNode, grpc_node: SpegelNode, first, last) -> None:
    layer = local_node.images["big"].layers[0]
    assert layer.path is not None
    data = layer.path.read_bytes()
    header = f"bytes={first}-{'' if last is None else last}"
    resp = httpx.get(f"{grpc_node.url}/v2/test/big/blobs/{layer.digest}", headers={"Range": header})
    end = layer.size - 1 if last is None else last
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes {first}-{end}/{layer.size}"
    assert resp.content == data[first : end + 1]


def test_manifests_over_grpc(local_node: LocalNode, grpc_node: SpegelNode) -> None:
    image = local_node.images["multi"]
    resp = httpx.get(f"{grpc_node.url}/v2/{image.repository}/manifests/v1?ns={image.registry}")
    assert resp.status_code == 200
    assert resp.content == image.top.data
