"""Shared fixtures: real containerd with imported test images, and a live spegel-py node."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.devcluster.daemons import Containerd
from registry.devcluster.images import Image, ImageBuilder, write_oci_archive
from registry.devcluster.spegel import SpegelNode
from tests.fixtures.cases import write_cases_archive

TEST_REGISTRY = "127.0.0.1:5999"  # a name only: nothing listens there, so nothing leaks


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    # Short, private path: unix socket paths are limited to ~107 bytes.
    path = Path(tempfile.mkdtemp(prefix="spt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class LocalNode:
    containerd: Containerd
    spegel: SpegelNode
    images: dict[str, Image] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.spegel.url


def build_test_images(builder: ImageBuilder, registry: str = TEST_REGISTRY) -> dict[str, Image]:
    return {
        "single": builder.image(f"{registry}/test/single:v1", [64 * 1024, 4096]),
        "multi": builder.image(f"{registry}/test/multi:v1", [8192], platforms=["amd64", "arm64"]),
        "docker": builder.image(f"{registry}/test/docker:v1", [8192], docker=True),
        "notype": builder.image(
            f"{registry}/test/notype:v1", [8192], platforms=["amd64"], index_media_type_field=False
        ),
        "big": builder.image(f"{registry}/test/big:v1", [6 * 1024 * 1024, 1024 * 1024]),
    }


@pytest.fixture(scope="session")
def local_node(workdir: Path) -> Iterator[LocalNode]:
    """containerd holding the CASES.md fixtures and built images, plus a spegel-py node."""
    ctrd = Containerd(workdir / "n1").start()
    builder = ImageBuilder(workdir / "images")
    images = build_test_images(builder)
    ctrd.ctr(
        "images",
        "import",
        "--all-platforms",
        "--no-unpack",
        str(write_cases_archive(workdir / "cases.tar")),
    )
    ctrd.import_archive(write_oci_archive(list(images.values()), workdir / "images.tar"))
    node = SpegelNode(workdir / "s1", ctrd)
    try:
        node.start()
        yield LocalNode(ctrd, node, images)
    finally:
        node.stop()
        ctrd.cleanup()
