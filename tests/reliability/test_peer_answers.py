"""Malformed peer answers at the mirror level, beyond tests/test_mirror.py.

A raw-socket peer sends scripted bytes (status lines, headers, bodies that no well-behaved
server would send). The mirror must skip it and take the good peer, or give up: never relay
bytes that do not belong to the request.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator

import pytest

from registry.devcluster.daemons import free_port
from registry.distribution import parse_path
from registry.mirror import Mirror, MirrorAborted
from routing.memory import MemoryNetwork, MemoryRouter
from routing.router import Peer
from tests.fixtures.fakepeers import FakePeer, PeerBehaviour, digest_of

BLOB = random.Random(91).randbytes(300 * 1024)
BD = digest_of(BLOB)
N = len(BLOB)
MANIFEST = b'{"schemaVersion":2,"manifests":[]}'
MD = digest_of(MANIFEST)
INDEX = "application/vnd.oci.image.index.v1+json"
RAW_HOST, GOOD_HOST = "127.0.0.41", "127.0.0.42"


class RawPeer:
    """Answers every request on ``host:port`` with the same scripted raw bytes, then closes."""

    def __init__(self, host: str, port: int, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data.split(b"\r\n", 1)[0])
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def http(status: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"Connection: close\r\n\r\n" + body


def blob_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Docker-Content-Digest": BD, **extra}


# (id, raw answer, range the client asked for or None)
BLOB_ANSWERS = [
    ("500", http("500 Internal Server Error", {"Content-Length": "2"}, b"{}"), None),
    ("garbage", b"SSH-2.0-OpenSSH_9.2\r\n\r\n", None),
    ("http09", BLOB[:100], None),
    (
        "no-length-chunked",
        http(
            "200 OK",
            blob_headers(**{"Transfer-Encoding": "chunked"}),
            f"{N:x}\r\n".encode() + BLOB + b"\r\n0\r\n\r\n",
        ),
        None,
    ),
    ("negative-length", http("200 OK", blob_headers(**{"Content-Length": "-1"}), BLOB), None),
    ("float-length", http("200 OK", blob_headers(**{"Content-Length": "3e5"}), BLOB), None),
    (
        "uppercase-digest",
        http(
            "200 OK",
            {**blob_headers(Content_Length=str(N)), "Docker-Content-Digest": BD.upper()},
            BLOB,
        ),
        None,
    ),
    (
        "206-to-a-full-request",
        http(
            "206 Partial Content",
            blob_headers(**{"Content-Length": "100", "Content-Range": f"bytes 0-99/{N}"}),
            BLOB[:100],
        ),
        None,
    ),
    (
        "206-other-range",
        http(
            "206 Partial Content",
            blob_headers(**{"Content-Length": "100", "Content-Range": f"bytes 0-99/{N}"}),
            BLOB[:100],
        ),
        "bytes=1000-1099",
    ),
    (
        "206-range-length-mismatch",
        http(
            "206 Partial Content",
            blob_headers(**{"Content-Length": "50", "Content-Range": f"bytes 1000-1099/{N}"}),
            BLOB[1000:1050],
        ),
        "bytes=1000-1099",
    ),
    (
        "206-garbage-content-range",
        http(
            "206 Partial Content",
            blob_headers(**{"Content-Length": "100", "Content-Range": "bytes */*"}),
            BLOB[1000:1100],
        ),
        "bytes=1000-1099",
    ),
    (
        "more-bytes-than-announced",
        http("200 OK", blob_headers(**{"Content-Length": str(N)}), BLOB + b"trailing junk"),
        None,
    ),
]


@pytest.fixture
def port() -> int:
    return free_port(RAW_HOST)


@pytest.fixture
def good(port: int) -> Iterator[PeerBehaviour]:
    behaviour = PeerBehaviour(
        blobs={BD: BLOB}, manifests={MD: (INDEX, MANIFEST)}, tags={"library/app:1": MD}
    )
    server = FakePeer(GOOD_HOST, port, behaviour).start()
    yield behaviour
    server.stop()


def mirror_for(port: int, key: str, hosts: list[str]) -> Mirror:
    network = MemoryNetwork()
    for i, host in enumerate(hosts):
        network.providers.setdefault(key, {})[f"p{i}"] = Peer(f"p{i}", host)
    return Mirror(
        MemoryRouter(network, Peer("self", "127.0.0.40")),
        port,
        resolve_timeout=0.5,
        manifest_timeout=2.0,
    )


@pytest.mark.parametrize(
    ("answer", "range_header"), [a[1:] for a in BLOB_ANSWERS], ids=[a[0] for a in BLOB_ANSWERS]
)
async def test_bad_blob_answer_is_skipped_for_the_good_peer(
    port: int, good: PeerBehaviour, answer: bytes, range_header: str | None
) -> None:
    raw = RawPeer(RAW_HOST, port, answer)
    mirror = mirror_for(port, BD, [RAW_HOST, GOOD_HOST])
    try:
        ref = parse_path(f"/v2/library/app/blobs/{BD}", "docker.io")
        fetched = await mirror.blob(ref, "GET", None, range_header)
        assert fetched is not None and fetched.stream is not None
        data = b""
        try:
            async for chunk in fetched.stream:
                data += chunk
        except MirrorAborted:
            # Acceptable only if the bad peer's answer was refused after headers went out:
            # then the client sees an aborted connection, never a clean short/wrong body.
            assert len(data) < int(fetched.headers["content-length"])
            return
        if range_header is None:
            assert fetched.status == 200 and data == BLOB
        else:
            assert fetched.status == 206
            assert fetched.headers["content-range"] == f"bytes 1000-1099/{N}"
            assert data == BLOB[1000:1100]
        assert int(fetched.headers["content-length"]) == len(data)
        assert raw.requests, "the bad peer was asked first"
    finally:
        await mirror.close()
        raw.stop()


MANIFEST_ANSWERS = [
    (
        "no-digest",
        http("200 OK", {"Content-Type": INDEX, "Content-Length": str(len(MANIFEST))}, MANIFEST),
    ),
    (
        "huge-length",
        http(
            "200 OK",
            {"Content-Type": INDEX, "Docker-Content-Digest": MD, "Content-Length": str(64 << 20)},
            MANIFEST,
        ),
    ),
    (
        "body-not-digest",
        http(
            "200 OK",
            {"Content-Type": INDEX, "Docker-Content-Digest": MD, "Content-Length": "34"},
            b"x" * 34,
        ),
    ),
    (
        "short-body",
        http(
            "200 OK",
            {
                "Content-Type": INDEX,
                "Docker-Content-Digest": MD,
                "Content-Length": str(len(MANIFEST) + 10),
            },
            MANIFEST,
        ),
    ),
    (
        "redirect",
        http("302 Found", {"Location": "http://127.0.0.99:1/", "Content-Length": "0"}, b""),
    ),
    ("garbage", b"\x00\x01\x02 not http at all\r\n\r\n"),
]


@pytest.mark.parametrize(
    "answer", [a[1] for a in MANIFEST_ANSWERS], ids=[a[0] for a in MANIFEST_ANSWERS]
)
@pytest.mark.parametrize("by", ["tag", "digest"])
async def test_bad_manifest_answer_is_skipped(
    port: int, good: PeerBehaviour, answer: bytes, by: str
) -> None:
    raw = RawPeer(RAW_HOST, port, answer)
    key = MD if by == "digest" else "docker.io/library/app:1"
    mirror = mirror_for(port, key, [RAW_HOST, GOOD_HOST])
    try:
        ref = parse_path(f"/v2/library/app/manifests/{MD if by == 'digest' else '1'}", "docker.io")
        fetched = await mirror.manifest(ref, "GET")
        assert fetched is not None
        assert fetched.peer.host == GOOD_HOST
        assert fetched.body == MANIFEST and fetched.headers["docker-content-digest"] == MD
        assert raw.requests
    finally:
        await mirror.close()
        raw.stop()
