"""The measure page against fakes: a fake DHT and a tiny registry on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from registry.events import PullEvent
from visualize import hooks
from visualize.measure import Measurer
from visualize.reference import ImageRef, parse_image
from visualize.store import MemoryEventStore


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"x" * 300_000
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": digest(CONFIG), "size": len(CONFIG)},
        "layers": [{"digest": digest(LAYER), "size": len(LAYER)}],
    }
).encode()
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": "sha256:" + "0" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": digest(MANIFEST), "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
).encode()
REPO = "library/demo"


class FakeRegistry(BaseHTTPRequestHandler):
    """Serves one image; records the paths and ``ns`` it was asked for."""

    requests: list[str] = []
    delay = 0.0

    def do_GET(self) -> None:
        self.requests.append(self.path)
        time.sleep(self.delay)
        path, _, _query = self.path.partition("?")
        manifests = {
            f"/v2/{REPO}/manifests/1.0": (INDEX, "application/vnd.oci.image.index.v1+json"),
            f"/v2/{REPO}/manifests/{digest(MANIFEST)}": (
                MANIFEST,
                "application/vnd.oci.image.manifest.v1+json",
            ),
        }
        blobs = {f"/v2/{REPO}/blobs/{digest(b)}": b for b in (CONFIG, LAYER)}
        if path in manifests:
            body, media_type = manifests[path]
        elif path in blobs:
            body, media_type = blobs[path], "application/octet-stream"
        else:
            body, media_type = b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json"
            self.send_response(404)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test hangs up on purpose: a broken pipe is expected


@pytest.fixture
def registry_url() -> Iterator[str]:
    FakeRegistry.requests = []
    FakeRegistry.delay = 0.0
    server = QuietServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


class FakeDHT:
    """Every key of the image is held by two peers, except what is listed in ``missing``."""

    def __init__(self, missing: set[str] | None = None) -> None:
        self.missing = missing or set()
        self.asked: list[str] = []

    async def __call__(self, key: str) -> list[tuple[str, float]]:
        self.asked.append(key)
        if key in self.missing:
            return []
        return [("127.0.0.202", 0.001), ("127.0.0.203", 0.004)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageRef("docker.io", "library/nginx", "latest")),
        ("nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27")),
        ("ghcr.io/org/app:v1", ImageRef("ghcr.io", "org/app", "v1")),
        ("localhost:5000/app", ImageRef("localhost:5000", "app", "latest")),
        ("org/app@sha256:" + "a" * 64, ImageRef("docker.io", "org/app", "", "sha256:" + "a" * 64)),
    ],
)
def test_parse_image(text: str, expected: ImageRef) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize("text", ["", "UPPER/case", "app:bad tag", "app@sha256:short"])
def test_parse_image_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image(text)


async def test_measure_times_lookups_and_pulls(registry_url: str) -> None:
    dht = FakeDHT()
    store = MemoryEventStore()
    # What the mirror would report while serving the layer from a peer.
    layer_event = PullEvent(
        "outgoing", "127.0.0.203", digest(LAYER), "blob", "docker.io", "GET", 200
    )
    original = FakeRegistry.do_GET

    def serve_and_report(handler: FakeRegistry) -> None:
        if digest(LAYER) in handler.path:
            store.record(layer_event)
        original(handler)

    FakeRegistry.do_GET = serve_and_report  # type: ignore[method-assign]
    try:
        result = await Measurer(dht, registry_url, store=store).measure(
            "docker.io/library/demo:1.0"
        )
    finally:
        FakeRegistry.do_GET = original  # type: ignore[method-assign]

    assert result.error == ""
    assert not result.timed_out
    assert dht.asked == [
        "docker.io/library/demo:1.0",
        digest(MANIFEST),
        digest(CONFIG),
        digest(LAYER),
    ]
    assert all(
        lookup.peers == [("127.0.0.202", 0.001), ("127.0.0.203", 0.004)]
        for lookup in result.lookups
    )
    assert [(p.kind, p.status, p.size) for p in result.pulls] == [
        ("manifest", 200, len(INDEX)),
        ("manifest", 200, len(MANIFEST)),
        ("config", 200, len(CONFIG)),
        ("layer", 200, len(LAYER)),
    ]
    layer = result.pulls[-1]
    assert layer.peer == "127.0.0.203"
    assert layer.duration > 0 and layer.throughput == pytest.approx(len(LAYER) / layer.duration)
    assert result.pulls[2].peer == "unknown"
    # Every request went through the local registry with the original registry in ?ns=.
    assert all("ns=docker.io" in path for path in FakeRegistry.requests)
    assert result.pull_bytes == len(INDEX) + len(MANIFEST) + len(CONFIG) + len(LAYER)


async def test_unknown_image_is_not_pulled(registry_url: str) -> None:
    dht = FakeDHT(missing={"docker.io/library/demo:1.0"})
    result = await Measurer(dht, registry_url).measure("demo:1.0")
    assert result.error == "no peer in the cluster has this image"
    assert result.pulls == []
    assert FakeRegistry.requests == []


async def test_measure_is_bounded_in_time(registry_url: str) -> None:
    FakeRegistry.delay = 0.5
    start = time.monotonic()
    result = await Measurer(FakeDHT(), registry_url, timeout=0.2).measure("demo:1.0")
    assert time.monotonic() - start < 0.45
    assert result.timed_out
    assert "stopped after" in result.error


async def test_failed_blob_is_reported_not_raised(registry_url: str) -> None:
    async def sync_free_dht(key: str) -> list[tuple[str, float]]:
        return [("127.0.0.202", 0.001)]

    result = await Measurer(sync_free_dht, registry_url).measure(f"demo@{digest(b'missing')}")
    assert [(p.status, p.error) for p in result.pulls] == [(404, "HTTP 404")]


async def test_lookup_failure_is_reported() -> None:
    def broken(key: str) -> list[tuple[str, float]]:
        raise RuntimeError("router not ready")

    result = await Measurer(broken, "http://127.0.0.1:9").measure("demo:1.0")
    assert "router not ready" in result.error


@pytest.fixture
def wired(registry_url: str) -> Iterator[FakeDHT]:
    dht = FakeDHT()
    hooks.configure_measure(resolve=dht, registry_url=registry_url + "/")
    yield dht
    hooks.configure_measure(resolve=None, registry_url="")


def test_measure_page_renders_results(
    client: Client, enabled: Any, store: MemoryEventStore, wired: FakeDHT
) -> None:
    response = client.get("/visualize/measure", {"image": "docker.io/library/demo:1.0"})
    assert response.status_code == 200
    html = response.content.decode()
    assert digest(LAYER) in html
    assert "127.0.0.203" in html  # a peer of the lookup table
    assert "292.969 KiB" not in html and "293.0 KiB" in html  # 300 000 bytes
    data = client.get(
        "/visualize/measure", {"image": "docker.io/library/demo:1.0", "format": "json"}
    ).json()
    assert [pull["kind"] for pull in data["pulls"]] == ["manifest", "manifest", "config", "layer"]
    assert data["lookups"][0]["peers"] == [["127.0.0.202", 0.001], ["127.0.0.203", 0.004]]


def test_measure_page_without_hooks(client: Client, enabled: Any, store: MemoryEventStore) -> None:
    hooks.configure_measure(resolve=None, registry_url="")
    form = client.get("/visualize/measure")
    assert form.status_code == 200
    assert 'name="image"' in form.content.decode()
    response = client.get("/visualize/measure", {"image": "demo:1.0"})
    assert "not available" in response.content.decode()
    assert client.get("/visualize/measure", {"image": "x", "format": "json"}).status_code == 503


async def test_router_resolver_adapts_the_router_interface() -> None:
    from routing.memory import MemoryNetwork, MemoryRouter
    from routing.router import Peer

    network = MemoryNetwork()
    holder = MemoryRouter(network, Peer("peer-b", "127.0.0.205"))
    await holder.advertise(["docker.io/library/demo:1.0"])
    mine = MemoryRouter(network, Peer("peer-a", "127.0.0.204"))
    resolve = hooks.router_resolver(mine, timeout=0.5)
    found = await resolve("docker.io/library/demo:1.0")
    assert [peer for peer, _ in found] == ["127.0.0.205"]
    assert all(0 <= seconds < 0.5 for _, seconds in found)
    assert await resolve("docker.io/library/other:1") == []
