"""Operating a node: metrics after real requests, JSON logs, blob speed cap, SIGTERM drain."""

from __future__ import annotations

import hashlib
import json
import random
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from registry.devcluster.spegel import SpegelNode
from tests.conftest import LocalNode
from tests.fixtures.cases import DIGESTS

pytestmark = pytest.mark.slow


def scrape(node: SpegelNode) -> str:
    resp = httpx.get(f"{node.admin_url}/metrics", timeout=5)
    assert resp.status_code == 200
    return resp.text


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_after_real_requests(local_node: LocalNode) -> None:
    node = local_node.spegel
    before = scrape(node)
    with httpx.Client(base_url=node.url) as c:
        assert c.get(f"/v2/library/nginx/blobs/{DIGESTS['L']}?ns=docker.io").status_code == 200
        assert c.get("/v2/library/nginx/manifests/nope?ns=docker.io").status_code == 404
    after = scrape(node)
    ok_before = (
        sample(
            before, "http_request_duration_seconds_count", handler="/v2/*", method="GET", code="200"
        )
        or 0
    )
    ok_after = sample(
        after, "http_request_duration_seconds_count", handler="/v2/*", method="GET", code="200"
    )
    assert ok_after is not None and ok_after >= ok_before + 1
    assert (
        sample(after, "http_response_size_bytes_count", handler="/v2/*", method="GET", code="404")
        is not None
    )
    assert sample(after, "http_requests_inflight", handler="/v2/*") is not None
    misses = sample(after, "spegel_mirror_requests_total", registry="docker.io", cache="miss")
    assert misses is not None and misses >= 1
    assert sample(after, "spegel_advertised_image_tags", registry="docker.io") == 2.0
    assert sample(after, "spegel_advertised_image_digests", registry="docker.io") == 2.0
    # I and I0 point at M, M at C; L is "hello world": 5 digests in all
    assert sample(after, "spegel_advertised_content_digests", registry="docker.io") == 5.0
    assert "spegel_resolve_duration_seconds" in after
    assert "spegel_mirror_last_success_timestamp_seconds" in after


def test_c28_client_chosen_ns_creates_no_series(local_node: LocalNode) -> None:
    node = local_node.spegel
    rng = random.Random(28)
    with httpx.Client(base_url=node.url) as c:
        for i in range(1000):
            digest = "sha256:" + rng.randbytes(32).hex()
            assert c.get(f"/v2/x/blobs/{digest}?ns=r{i}.example.com").status_code == 404
    text = scrape(node)
    registries = set(re.findall(r'registry="([^"]*)"', text))
    assert not any(r.endswith(".example.com") for r in registries)
    assert len(registries) <= 3
    for forbidden in ("sha256:", "/v2/x", "example.com", 'ip="', 'peer="', 'path="'):
        assert not re.search(r"\{[^}]*" + re.escape(forbidden), text), forbidden


def test_json_access_log_lines(local_node: LocalNode) -> None:
    httpx.get(f"{local_node.url}/v2/library/nginx/blobs/{DIGESTS['L']}?ns=docker.io")
    time.sleep(0.2)
    records = []
    for line in local_node.spegel.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    requests = [r for r in records if r.get("msg") == "request"]
    assert requests
    last = requests[-1]
    for key in ("path", "status", "method", "latency", "ip", "handler", "time", "level"):
        assert key in last
    assert last["handler"] == "/v2/*" and last["status"] == 200 and last["ip"] == "127.0.0.1"


@pytest.fixture
def throttled_node(local_node: LocalNode, workdir: Path):
    node = SpegelNode(
        workdir / "throttled",
        local_node.containerd,
        flags=["--blob-speed=4MBps", "--shutdown-grace=20s"],
    )
    node.start()
    yield node
    node.stop()


def test_blob_speed_caps_peer_traffic_only(local_node: LocalNode, throttled_node) -> None:
    layer = local_node.images["big"].layers[0]  # 6 MiB
    url = f"{throttled_node.url}/v2/test/big/blobs/{layer.digest}"
    start = time.monotonic()
    resp = httpx.get(url, headers={"X-Spegel-Mirrored": "true"}, timeout=30)
    peer_seconds = time.monotonic() - start
    assert resp.status_code == 200 and len(resp.content) == layer.size
    assert peer_seconds >= (layer.size - (1 << 20)) / (4 * 1024 * 1024) * 0.9
    start = time.monotonic()
    resp = httpx.get(url, timeout=30)  # our own containerd: not capped
    assert resp.status_code == 200 and len(resp.content) == layer.size
    assert time.monotonic() - start < peer_seconds / 3


def test_sigterm_lets_an_inflight_download_finish(local_node: LocalNode, throttled_node) -> None:
    layer = local_node.images["big"].layers[0]
    url = f"{throttled_node.url}/v2/test/big/blobs/{layer.digest}"
    result: dict[str, object] = {}

    def download() -> None:
        sha = hashlib.sha256()
        size = 0
        with httpx.stream("GET", url, headers={"X-Spegel-Mirrored": "true"}, timeout=30) as r:
            result["status"] = r.status_code
            for chunk in r.iter_bytes():
                sha.update(chunk)
                size += len(chunk)
        result["digest"] = "sha256:" + sha.hexdigest()
        result["size"] = size

    thread = threading.Thread(target=download)
    thread.start()
    time.sleep(0.4)
    assert throttled_node.proc is not None
    throttled_node.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{throttled_node.url}/livez", timeout=1)  # no longer accepting
    thread.join(30)
    assert result == {"status": 200, "digest": layer.digest, "size": layer.size}
    assert throttled_node.proc.wait(30) == 0


def test_basic_auth_from_files(local_node: LocalNode, workdir: Path) -> None:
    secrets = workdir / "basic-auth"
    secrets.mkdir(exist_ok=True)
    (secrets / "username").write_text("spegel\n")
    (secrets / "password").write_text("s3cret-value\n")
    node = SpegelNode(
        workdir / "authed", local_node.containerd, flags=[f"--basic-auth-dir={secrets}"]
    )
    node.start()
    try:
        path = f"{node.url}/v2/library/nginx/blobs/{DIGESTS['L']}?ns=docker.io"
        denied = httpx.get(path)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == 'Basic realm="spegel"'
        assert denied.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert httpx.get(path, auth=("spegel", "wrong")).status_code == 401
        ok = httpx.get(path, auth=("spegel", "s3cret-value"))
        assert ok.status_code == 200 and ok.content == b"hello world"
        assert httpx.get(f"{node.url}/v2/", auth=("spegel", "s3cret-value")).status_code == 200
        assert httpx.get(f"{node.url}/readyz").status_code == 200  # probes stay open
    finally:
        node.stop()
    assert "s3cret-value" not in node.log()
