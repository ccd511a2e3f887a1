"""State tracking against a real containerd: keys appear and disappear with images (issue 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.containerd.client import ContainerdClient
from registry.content import ContainerdStore
from registry.devcluster.daemons import Containerd
from registry.devcluster.images import Image, ImageBuilder, write_oci_archive
from registry.filters import ReferenceFilter
from registry.state import StateTracker, is_tag_name
from routing.memory import MemoryNetwork, MemoryRouter
from routing.router import Peer

pytestmark = pytest.mark.slow
REG = "127.0.0.1:5999"


@pytest.fixture
def ctrd(workdir: Path):
    daemon = Containerd(workdir / "state-ctrd").start()
    yield daemon
    daemon.cleanup()


@pytest.fixture
async def tracked(ctrd: Containerd) -> AsyncIterator[tuple[StateTracker, MemoryRouter]]:
    client = ContainerdClient(str(ctrd.sock))
    router = MemoryRouter(MemoryNetwork(), Peer("self", "127.0.0.1"))
    flt = ReferenceFilter.build([f"http://{REG}"], [".*:skipme$"])
    tracker = StateTracker(client, ContainerdStore(client, str(ctrd.content_path)), router, flt)
    task = asyncio.create_task(tracker.run())
    await asyncio.wait_for(tracker.synced.wait(), 10)
    yield tracker, router
    task.cancel()
    await client.close()


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def digests(image: Image) -> set[str]:
    return {b.digest for b in image.blobs.values()}


def test_tag_names() -> None:
    assert is_tag_name("docker.io/library/nginx:1.25")
    assert is_tag_name("127.0.0.1:5000/a/b:v1")
    assert not is_tag_name("sha256:" + "0" * 64)
    assert not is_tag_name("docker.io/library/nginx@sha256:" + "0" * 64)
    assert not is_tag_name("127.0.0.1:5000/a/b")


async def test_import_tag_delete(tracked, ctrd: Containerd, workdir: Path) -> None:
    _, router = tracked
    builder = ImageBuilder(workdir / "state-images", seed=9)
    image = builder.image(f"{REG}/state/app:v1", [4096, 2048], platforms=["amd64", "arm64"])
    ctrd.import_archive(write_oci_archive([image], workdir / "state1.tar"))
    tag_key = f"{REG}/state/app:v1"
    await eventually(lambda: tag_key in router.advertised)
    await eventually(lambda: digests(image) <= router.advertised)

    ctrd.ctr("images", "tag", image.name, f"{REG}/state/app:v2")
    await eventually(lambda: f"{REG}/state/app:v2" in router.advertised)

    ctrd.ctr("images", "rm", image.name)
    await eventually(lambda: tag_key not in router.advertised)
    assert digests(image) <= router.advertised  # still held through :v2

    ctrd.ctr("images", "rm", "--sync", f"{REG}/state/app:v2")
    # CRI keeps a config-digest record too; removing it lets GC collect the content.
    for line in ctrd.ctr("images", "ls", "-q").split():
        if line.startswith("sha256:"):
            ctrd.ctr("images", "rm", "--sync", line)
    await eventually(lambda: not (digests(image) & router.advertised), timeout=15)
    assert f"{REG}/state/app:v2" not in router.advertised


async def test_missing_content_and_filters_are_not_advertised(
    tracked, ctrd: Containerd, workdir: Path
) -> None:
    tracker, router = tracked
    builder = ImageBuilder(workdir / "state-images2", seed=10)
    image = builder.image(f"{REG}/state/partial:v1", [4096])
    skipped = builder.image(f"{REG}/state/filtered:skipme", [1024])
    other = builder.image("127.0.0.9:1/state/other:v1", [1024])
    ctrd.import_archive(write_oci_archive([image, skipped, other], workdir / "state2.tar"))
    await eventually(lambda: f"{REG}/state/partial:v1" in router.advertised)
    assert f"{REG}/state/filtered:skipme" not in router.advertised
    assert "127.0.0.9:1/state/other:v1" not in router.advertised
    # C20: a layer missing from the store is never advertised after a full sync.
    layer = image.layers[0].digest
    ctrd.ctr("content", "rm", layer)
    await eventually(lambda: layer not in router.advertised)
    await tracker.full_sync()
    assert layer not in router.advertised
    assert image.top.digest in router.advertised


async def test_containerd_restart_resubscribes(ctrd: Containerd, workdir: Path) -> None:
    client = ContainerdClient(str(ctrd.sock))
    router = MemoryRouter(MemoryNetwork(), Peer("self", "127.0.0.1"))
    health: list[bool] = []
    tracker = StateTracker(
        client,
        ContainerdStore(client, str(ctrd.content_path)),
        router,
        ReferenceFilter.build([], []),
        on_health=health.append,
    )
    task = asyncio.create_task(tracker.run())
    try:
        await asyncio.wait_for(tracker.synced.wait(), 10)
        ctrd.stop()
        await eventually(lambda: health and health[-1] is False)
        await asyncio.to_thread(ctrd.start)
        image = ImageBuilder(workdir / "state-images3", seed=11).image(f"{REG}/state/r:v1", [512])
        await eventually(lambda: health[-1] is True, timeout=20)
        ctrd.import_archive(write_oci_archive([image], workdir / "state3.tar"))
        await eventually(lambda: f"{REG}/state/r:v1" in router.advertised)
    finally:
        task.cancel()
        await client.close()
