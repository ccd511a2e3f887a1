"""Security of a node: a read-only registry port with nothing but /v2 and the probes, no SSRF
(canary sockets on other loopback addresses must see zero connections), the mirror talks only
to router peers on the registry port and /v2, admin needs login and CSRF, no secret logged.

The WebSocket origin check is covered by tests/visualize/test_consumer.py
(``test_foreign_origin_rejected``: foreign host, foreign port, ``null`` and missing Origin).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from registry.config import SpegelConfig
from registry.devcluster.daemons import free_port
from registry.devcluster.spegel import REPO_ROOT, SpegelNode
from registry.node import Node, install
from routing.memory import MemoryNetwork, MemoryRouter
from routing.router import Peer
from tests.conftest import LocalNode
from tests.fixtures.cases import DIGESTS
from tests.fixtures.fakepeers import FakePeer, PeerBehaviour, digest_of
from tests.reliability.conftest import assert_oci_error

L = DIGESTS["L"]
ABSENT = "sha256:" + "ab" * 32
CANARY_HOST = "127.0.0.99"


class Canary:
    """A listener that must never be connected to; counts every accepted connection."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.accepted: list[tuple[str, int]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(addr)
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def canaries(local_node: LocalNode) -> Iterator[list[Canary]]:
    ports = {local_node.spegel.registry_port, 1234, 80, 5000}
    started = [Canary(CANARY_HOST, p) for p in sorted(ports)]
    yield started
    for canary in started:
        canary.stop()


def raw(url: str, method: str, target: str, headers: dict[str, str] | None = None):
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for key, value in {"Host": f"{host}:{port}", **(headers or {})}.items():
            conn.putheader(key, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read()
    finally:
        conn.close()


# -- the registry port's surface ----------------------------------------------------------

SURFACE = [
    ("GET", "/admin/", 404),
    ("GET", "/admin/login/", 404),
    ("GET", "/metrics", 404),
    ("GET", "/visualize/", 404),
    ("GET", "/visualize/ws", 404),
    ("GET", "/static/admin/css/base.css", 404),
    ("GET", "/", 404),
    ("GET", "/v1/", 404),
    ("GET", "/v2/_catalog", 404),
    ("GET", "/v2/library/nginx/tags/list", 404),
    ("POST", "/v2/library/nginx/blobs/uploads/", 405),
    ("PUT", "/v2/library/nginx/manifests/1.25", 405),
    ("PATCH", f"/v2/library/nginx/blobs/{L}", 405),
    ("DELETE", f"/v2/library/nginx/blobs/{L}", 405),
    ("DELETE", "/v2/library/nginx/manifests/1.25", 405),
    ("POST", "/v2/", 405),
    ("PUT", "/readyz", 405),
    ("POST", "/livez", 405),
    ("OPTIONS", "/v2/", 405),
    ("GET", "*", 404),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "target", "status"), SURFACE)
def test_registry_port_is_read_only_v2_and_probes(
    local_node: LocalNode, method: str, target: str, status: int
) -> None:
    got, ctype, body = raw(local_node.url, method, target)
    assert got == status
    assert_oci_error(got, ctype, body)
    if status == 405 and target.startswith("/v2"):
        assert b'"UNSUPPORTED"' in body
    # The admin port, for its part, never serves /v2.
    assert httpx.get(f"{local_node.spegel.admin_url}/v2/").status_code == 404


# -- SSRF: nothing in a request chooses where the node connects ----------------------------


def ssrf_requests(port: int) -> list[tuple[str, str, dict[str, str]]]:
    evil = f"{CANARY_HOST}:{port}"
    return [
        ("GET", f"/v2/library/nginx/manifests/9.9?ns={evil}", {}),
        ("HEAD", f"/v2/library/nginx/manifests/9.9?ns=http%3A%2F%2F{evil}%2Fv2%2F", {}),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}?ns={evil}", {}),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}?ns={CANARY_HOST}:1234", {}),
        ("GET", f"/v2/library/nginx/manifests/9.9?ns=docker.io&ns={evil}", {}),
        ("GET", f"http://{evil}/v2/library/nginx/manifests/9.9?ns=docker.io", {}),
        ("GET", f"http://{CANARY_HOST}:1234/v2/library/nginx/blobs/{ABSENT}", {}),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}", {"Host": evil}),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}", {"X-Forwarded-For": CANARY_HOST}),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}", {"X-Forwarded-Host": evil}),
        (
            "GET",
            f"/v2/library/nginx/blobs/{ABSENT}",
            {"Forwarded": f"for={CANARY_HOST};host={evil}"},
        ),
        ("GET", f"/v2/library/nginx/blobs/{ABSENT}", {"X-Original-URL": f"http://{evil}/"}),
        ("GET", f"/v2/{CANARY_HOST}:{port}/x/blobs/{ABSENT}", {}),
        ("GET", f"/v2/../{evil}/v2/x/blobs/{ABSENT}", {}),
        ("GET", f"/v2/%2e%2e%2f{CANARY_HOST}%3a{port}/blobs/{ABSENT}", {}),
        ("GET", f"/v2/x%2f..%2f..%2f{CANARY_HOST}/manifests/9.9?ns=docker.io", {}),
        ("GET", f"//{evil}/v2/x/blobs/{ABSENT}", {}),
        ("GET", f"/v2/x/manifests/9.9?ns=%40{evil}", {}),
        ("GET", f"/v2/x/manifests/9.9?ns=docker.io%40{evil}", {}),
        (
            "GET",
            f"/v2/x/blobs/{ABSENT}",
            {"X-Spegel-Mirrored": "false", "Referer": f"http://{evil}/"},
        ),
    ]


@pytest.mark.slow
def test_no_ssrf_from_request_fields_on_the_live_node(
    local_node: LocalNode, canaries: list[Canary]
) -> None:
    for method, target, headers in ssrf_requests(local_node.spegel.registry_port):
        status, ctype, body = raw(local_node.url, method, target, headers)
        assert status in (200, 404, 405), (target, status)
        if status >= 400:
            assert_oci_error(status, ctype, body, method)
    assert [c.accepted for c in canaries] == [[] for _ in canaries]


class EmptyStore:
    """A content source holding nothing: every request goes to the mirror."""

    async def resolve(self, reference: str) -> str | None:
        return None

    async def size(self, digest: str) -> int | None:
        return None

    async def blob(self, digest: str) -> None:
        return None

    async def manifest(self, digest: str):
        return None

    async def read(self, digest: str, offset: int, length: int) -> AsyncIterator[bytes]:
        if False:
            yield b""


async def test_mirror_contacts_only_router_peers_on_the_registry_port_and_v2() -> None:
    """In-process node whose router names one fake peer; hostile requests reach only that
    peer, only on the cluster registry port, only on /v2 paths rebuilt from the reference."""
    from spegel_site.asgi import registry_application

    port = free_port("127.0.0.61")
    blob = b"only from the router's peer"
    digest = digest_of(blob)
    peer = PeerBehaviour(blobs={digest: blob})
    server = FakePeer("127.0.0.61", port, peer).start()
    canaries = [Canary(CANARY_HOST, p) for p in sorted({port, 1234, 80, 5000})]
    network = MemoryNetwork()
    for key in (digest, ABSENT, "docker.io/library/nginx:9.9", f"{CANARY_HOST}:{port}/x:9.9"):
        network.providers.setdefault(key, {})["p1"] = Peer("p1", "127.0.0.61")
    config = SpegelConfig.from_env({"REGISTRY_ADDR": f"127.0.0.60:{port}"})
    node = Node.build(config, EmptyStore(), MemoryRouter(network, Peer("self", "127.0.0.60")))  # type: ignore[arg-type]
    install(node)
    transport = httpx.ASGITransport(app=registry_application)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.60") as client:
            for method, target, headers in ssrf_requests(port):
                if target.startswith("http://"):
                    continue  # absolute-URI targets only exist on the wire: the live test
                resp = await client.request(method, target, headers=headers)
                assert resp.status_code in (404, 405), (target, resp.status_code)
            ok = await client.get(
                f"/v2/library/nginx/blobs/{digest}?ns={CANARY_HOST}:{port}",
                headers={"Host": f"{CANARY_HOST}:{port}", "X-Forwarded-For": CANARY_HOST},
            )
            assert ok.status_code == 200 and ok.content == blob
    finally:
        install(None)
        await node.mirror.close()
        server.stop()
        for canary in canaries:
            canary.stop()
    assert [c.accepted for c in canaries] == [[] for _ in canaries]
    assert peer.requests, "the router's peer was asked"
    name = re.compile(r"^/v2/[a-z0-9]+(?:[._/-][a-z0-9]+)*/(manifests|blobs)/[A-Za-z0-9._:-]+$")
    for method, path, _ in peer.requests:
        assert method in ("GET", "HEAD") and name.match(path), path
        assert CANARY_HOST not in path


# -- admin: login and CSRF; secrets never logged --------------------------------------------


def run_ensure_admin(data_dir: Path, username: str, password: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "spegel_site.settings",
        "DATA_DIR": str(data_dir),
        "SPEGEL_ADMIN_USERNAME": username,
        "SPEGEL_ADMIN_PASSWORD": password,
        "LOG_LEVEL": "DEBUG",
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "ensure_admin"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "login form without a CSRF token"
    return match.group(1)


@pytest.mark.slow
def test_admin_login_csrf_and_no_secret_logged(local_node: LocalNode, workdir: Path) -> None:
    admin_password = "Adm1n-pass-7f3c9e"
    basic_password = "b4sic-s3cret-42aa"
    secrets_dir = workdir / "sec-basic"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "username").write_text("puller\n")
    (secrets_dir / "password").write_text(basic_password + "\n")
    base = workdir / "sec-node"
    ensure_out = run_ensure_admin(base / "data", "root-admin", admin_password)
    node = SpegelNode(
        base,
        local_node.containerd,
        flags=[f"--basic-auth-dir={secrets_dir}", "--log-level=DEBUG"],
        env={"SPEGEL_ADMIN_USERNAME": "root-admin", "SPEGEL_ADMIN_PASSWORD": admin_password},
    )
    node.start()
    try:
        blob = f"{node.url}/v2/library/nginx/blobs/{L}?ns=docker.io"
        assert httpx.get(blob, auth=("puller", basic_password)).status_code == 200
        assert httpx.get(blob, auth=("puller", basic_password + "x")).status_code == 401
        assert (
            httpx.get(
                f"{node.url}/v2/x/blobs/{ABSENT}", auth=("puller", basic_password)
            ).status_code
            == 404
        )
        admin = node.admin_url
        with httpx.Client(base_url=admin, timeout=10) as anon:
            resp = anon.get("/admin/")
            assert resp.status_code == 302 and "/admin/login/" in resp.headers["location"]
            # POST without the CSRF cookie and token: refused before credentials are checked.
            forged = anon.post(
                "/admin/login/", data={"username": "root-admin", "password": admin_password}
            )
            assert forged.status_code == 403
            assert anon.get("/admin/visualize/").status_code in (302, 404)
        with httpx.Client(base_url=admin, timeout=10) as browser:
            token = csrf_token(browser.get("/admin/login/").text)
            wrong = browser.post(
                "/admin/login/",
                data={"username": "root-admin", "password": "not-it", "csrfmiddlewaretoken": token},
                headers={"Referer": f"{admin}/admin/login/"},
            )
            assert wrong.status_code == 200 and "sessionid" not in browser.cookies
            token = csrf_token(wrong.text)
            good = browser.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": "root-admin",
                    "password": admin_password,
                    "csrfmiddlewaretoken": token,
                },
                headers={"Referer": f"{admin}/admin/login/"},
            )
            assert good.status_code == 302 and "sessionid" in browser.cookies
            assert browser.get("/admin/").status_code == 200
    finally:
        node.stop()
    logs = node.log() + ensure_out
    token = base64.b64encode(f"puller:{basic_password}".encode()).decode()
    for secret in (admin_password, basic_password, token):
        assert secret not in logs, f"secret found in logs: {secret[:4]}..."
    assert '"msg": "request"' in logs  # the log really recorded the requests
