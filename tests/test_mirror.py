"""The mirror against scripted peers on 127.0.0.x: resume, verification, faults (C03, C14, C16)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Iterator

import pytest

from registry.devcluster.daemons import free_port
from registry.distribution import parse_path
from registry.mirror import Mirror, MirrorAborted
from registry.ranges import parse_range
from routing.memory import MemoryNetwork, MemoryRouter
from routing.router import Peer
from tests.fixtures.fakepeers import BlackHole, FakePeer, PeerBehaviour, digest_of

Z = random.Random(16).randbytes(10 * 1024 * 1024)
ZD = digest_of(Z)
HOSTS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]


@pytest.fixture
def port() -> int:
    return free_port("127.0.0.21")


@pytest.fixture
def peers(port: int) -> Iterator[list[PeerBehaviour]]:
    behaviours = [PeerBehaviour(blobs={ZD: Z}) for _ in HOSTS[:2]]
    servers = [FakePeer(h, port, b).start() for h, b in zip(HOSTS, behaviours, strict=False)]
    yield behaviours
    for server in servers:
        server.stop()


def make_mirror(port: int, hosts: list[str], key: str = ZD, **kw: float) -> Mirror:
    network = MemoryNetwork()
    for i, host in enumerate(hosts):
        network.providers.setdefault(key, {})[f"p{i}"] = Peer(f"p{i}", host)
    router = MemoryRouter(network, Peer("self", "127.0.0.20"))
    return Mirror(router, port, resolve_timeout=0.5, resolve_retries=3, **kw)


async def collect(mirror: Mirror, path: str, range_header: str | None = None):
    ref = parse_path(path, "docker.io")
    fetched = await mirror.blob(ref, "GET", None, range_header)
    assert fetched is not None and fetched.stream is not None
    data = bytearray()
    async for chunk in fetched.stream:
        data += chunk
    return fetched, bytes(data)


async def test_c16_resume_from_exact_offset_on_next_peer(port, peers) -> None:
    peers[0].drop_after = 4 * 1024 * 1024
    mirror = make_mirror(port, HOSTS[:2])
    fetched, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}")
    await mirror.close()
    assert fetched.status == 200
    assert fetched.headers["content-length"] == str(len(Z))
    assert len(data) == len(Z) and hashlib.sha256(data).hexdigest() == ZD[7:]
    assert peers[1].requests[-1][2] == f"bytes=4194304-{len(Z) - 1}"


async def test_c16_range_variant(port, peers) -> None:
    peers[0].drop_after = 1024 * 1024
    mirror = make_mirror(port, HOSTS[:2])
    fetched, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}", "bytes=1000-")
    await mirror.close()
    assert fetched.status == 206
    assert fetched.headers["content-range"] == f"bytes 1000-{len(Z) - 1}/{len(Z)}"
    assert data == Z[1000:]
    assert peers[1].requests[-1][2] == f"bytes={1000 + 1024 * 1024}-{len(Z) - 1}"


async def test_c16_abort_when_no_peer_can_continue(port, peers) -> None:
    peers[0].drop_after = 2 * 1024 * 1024
    mirror = make_mirror(port, HOSTS[:1])
    ref = parse_path(f"/v2/library/app/blobs/{ZD}", "docker.io")
    fetched = await mirror.blob(ref, "GET", None, None)
    assert fetched is not None and fetched.stream is not None
    received = 0
    with pytest.raises(MirrorAborted):
        async for chunk in fetched.stream:
            received += len(chunk)
    await mirror.close()
    assert received < len(Z)


async def test_wrong_bytes_never_reach_the_client_whole(port, peers) -> None:
    peers[0].wrong_bytes = True
    mirror = make_mirror(port, HOSTS[:1])
    ref = parse_path(f"/v2/library/app/blobs/{ZD}", "docker.io")
    fetched = await mirror.blob(ref, "GET", None, None)
    assert fetched is not None and fetched.stream is not None
    received = 0
    with pytest.raises(MirrorAborted, match="digest mismatch"):
        async for chunk in fetched.stream:
            received += len(chunk)
    assert received < len(Z)  # the last chunk was held back
    assert mirror.bad_peers  # and the peer is marked bad
    await mirror.close()


async def test_short_body_is_aborted_and_peer_avoided_next_time(port, peers) -> None:
    peers[0].short_length = True
    mirror = make_mirror(port, HOSTS[:1] + HOSTS[1:2])
    mirror.router.network.providers[ZD].pop("p1")  # only the liar first
    with pytest.raises(MirrorAborted, match="digest mismatch"):
        await collect(mirror, f"/v2/library/app/blobs/{ZD}")
    mirror.router.network.providers[ZD]["p1"] = Peer("p1", HOSTS[1])
    _, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}")
    await mirror.close()
    assert data == Z
    assert len(peers[0].requests) == 1  # the bad peer was not asked again


@pytest.mark.parametrize("fault", ["wrong_digest_header", "redirect_to"])
async def test_bad_peer_answers_are_skipped(port, peers, fault: str) -> None:
    setattr(peers[0], fault, "http://127.0.0.1:1/" if fault == "redirect_to" else True)
    mirror = make_mirror(port, HOSTS[:2])
    _, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}")
    await mirror.close()
    assert data == Z
    assert len(peers[1].requests) == 1


async def test_c03_blob_head_through_a_peer(port, peers) -> None:
    mirror = make_mirror(port, HOSTS[:1])
    ref = parse_path(f"/v2/library/app/blobs/{ZD}", "docker.io")
    fetched = await mirror.blob(ref, "HEAD", None, None)
    await mirror.close()
    assert fetched is not None and fetched.status == 200
    assert fetched.headers["content-length"] == str(len(Z))
    assert fetched.headers["docker-content-digest"] == ZD
    assert fetched.headers["accept-ranges"] == "bytes"
    assert peers[0].requests == [("HEAD", f"/v2/library/app/blobs/{ZD}", "")]


async def test_c14_range_passed_through(port, peers) -> None:
    mirror = make_mirror(port, HOSTS[:1])
    fetched, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}", "bytes=0-4")
    await mirror.close()
    assert fetched.status == 206 and data == Z[:5]
    assert fetched.headers["content-range"] == f"bytes 0-4/{len(Z)}"
    assert parse_range("bytes=0-4", len(Z)) is not None


async def test_black_hole_peer_is_bounded_then_next_peer(port, peers) -> None:
    hole = BlackHole("127.0.0.23", port)
    try:
        mirror = make_mirror(port, ["127.0.0.23", HOSTS[1]], manifest_timeout=1.0)
        start = time.monotonic()
        _, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}")
        elapsed = time.monotonic() - start
        await mirror.close()
        assert data == Z
        assert elapsed < 3.0
    finally:
        hole.stop()


async def test_manifest_budget_with_only_black_holes(port) -> None:
    hole = BlackHole("127.0.0.23", port)
    key = "docker.io/library/nginx:1.25"
    try:
        mirror = make_mirror(port, ["127.0.0.23"], key=key, manifest_timeout=1.0)
        ref = parse_path("/v2/library/nginx/manifests/1.25", "docker.io")
        start = time.monotonic()
        assert await mirror.manifest(ref, "HEAD") is None
        assert time.monotonic() - start < 1.5
        await mirror.close()
    finally:
        hole.stop()


async def test_manifest_by_tag_is_verified(port) -> None:
    body = b'{"schemaVersion":2,"manifests":[]}'
    digest = digest_of(body)
    index = "application/vnd.oci.image.index.v1+json"
    good = PeerBehaviour(manifests={digest: (index, body)}, tags={"library/nginx:1.25": digest})
    bad = PeerBehaviour(
        manifests={digest: (index, body)}, tags={"library/nginx:1.25": digest}, wrong_bytes=True
    )
    servers = [FakePeer(HOSTS[0], port, bad).start(), FakePeer(HOSTS[1], port, good).start()]
    try:
        mirror = make_mirror(port, HOSTS[:2], key="docker.io/library/nginx:1.25")
        ref = parse_path("/v2/library/nginx/manifests/1.25", "docker.io")
        fetched = await mirror.manifest(ref, "GET")
        await mirror.close()
        assert fetched is not None
        assert fetched.body == body
        assert fetched.headers["docker-content-digest"] == digest
        assert fetched.headers["content-type"] == index
        assert fetched.peer.host == HOSTS[1]
    finally:
        for server in servers:
            server.stop()


async def test_nothing_found_is_immediate(port) -> None:
    mirror = make_mirror(port, [], key="nothing")
    ref = parse_path("/v2/library/nginx/manifests/9.9", "docker.io")
    start = time.monotonic()
    assert await mirror.manifest(ref, "HEAD") is None
    assert time.monotonic() - start < 0.1
    await mirror.close()
    await asyncio.sleep(0)


async def test_peers_receive_our_basic_auth(port, peers) -> None:
    mirror = make_mirror(port, HOSTS[:1])
    mirror.base_headers["Authorization"] = "Basic dXNlcjpwYXNz"
    _, data = await collect(mirror, f"/v2/library/app/blobs/{ZD}")
    await mirror.close()
    assert data == Z
    assert peers[0].authorizations == ["Basic dXNlcjpwYXNz"]


async def test_unsatisfiable_range_through_a_peer_is_416(port) -> None:
    behaviour = PeerBehaviour(blobs={ZD: Z})
    peer = FakePeer(HOSTS[0], port, behaviour).start()
    try:
        mirror = make_mirror(port, HOSTS[:1])
        ref = parse_path(f"/v2/library/app/blobs/{ZD}", "docker.io")
        fetched = await mirror.blob(ref, "GET", None, f"bytes={len(Z)}-")
        await mirror.close()
        assert fetched is not None and fetched.status == 416
        assert fetched.headers["content-range"] == f"bytes */{len(Z)}"
    finally:
        peer.stop()
