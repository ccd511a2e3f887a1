"""Faults on a live node: containerd restarted under load, the bootstrap peer absent at start,
SIGTERM during several downloads. Each node here has its own containerd (never the shared
session fixture), all on loopback, all stopped by PID; every loop is bounded in count and time.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from registry.devcluster.cluster import common_free_port
from registry.devcluster.images import ImageBuilder, write_oci_archive
from tests.fixtures.cases import BLOBS, DIGESTS
from tests.reliability.conftest import PairFactory, assert_oci_error, wait_until

pytestmark = pytest.mark.slow

L, I = DIGESTS["L"], DIGESTS["I"]
# (path, expected body) requests the load loop cycles through
REQUESTS = [
    (f"/v2/library/nginx/blobs/{L}?ns=docker.io", BLOBS["L"]),
    ("/v2/library/nginx/manifests/1.25?ns=docker.io", BLOBS["I"]),
    (f"/v2/library/nginx/manifests/{I}?ns=docker.io", BLOBS["I"]),
]


@dataclass
class Outcome:
    at: float
    status: int  # 0: transport error
    latency: float
    ok: bool  # 200 with the right bytes, or an OCI error body
    note: str = ""
    aborted: bool = False  # headers sent, then the body was cut (never a clean short body)


@dataclass
class LoadLoop:
    """A few client threads requesting fixtures in a loop; bounded by count and time."""

    url: str
    threads: int = 4
    max_requests: int = 20000
    max_seconds: float = 90.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, offset: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        i = offset
        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(10.0)) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if len(self.outcomes) >= self.max_requests:
                    return
                path, expected = REQUESTS[i % len(REQUESTS)]
                i += 1
                start = time.monotonic()
                try:
                    resp = client.get(path)
                except httpx.HTTPError as err:
                    cut = isinstance(err, httpx.RemoteProtocolError) and "complete message" in str(
                        err
                    )
                    self.outcomes.append(
                        Outcome(start, 0, time.monotonic() - start, False, repr(err), cut)
                    )
                    time.sleep(0.01)
                    continue
                latency = time.monotonic() - start
                if resp.status_code == 200:
                    ok, note = resp.content == expected, ""
                else:
                    try:
                        assert_oci_error(
                            resp.status_code, resp.headers.get("content-type", ""), resp.content
                        )
                        ok, note = True, ""
                    except (AssertionError, ValueError) as err:
                        ok, note = False, f"{err!r} {resp.content[:200]!r}"
                self.outcomes.append(Outcome(start, resp.status_code, latency, ok, note))

    def __enter__(self) -> LoadLoop:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)


def readyz(url: str) -> int:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_containerd_restart_under_load(make_pair: PairFactory) -> None:
    """containerd killed and restarted twice while clients keep pulling.

    During each outage /readyz turns non-200 within seconds and every request still gets a
    prompt answer (right bytes, or a 4xx/5xx OCI error body; never a hang); after containerd is
    back the node re-subscribes by itself (same PID), /readyz is 200 and content is served.
    """
    pair = make_pair(direct_content=False)  # every byte through containerd's gRPC API
    node, ctrd = pair.spegel, pair.containerd
    assert wait_until(lambda: readyz(node.url) == 200, 20) is not None
    pid = node.proc.pid
    outages: list[tuple[float, float]] = []
    recoveries: list[float] = []
    with LoadLoop(node.url) as load:
        time.sleep(1.0)
        for _ in range(2):
            assert ctrd.proc is not None
            down_at = time.monotonic()
            ctrd.proc.send_signal(signal.SIGKILL)  # a crash, not a clean stop
            ctrd.proc.wait(5)
            ctrd.proc = None
            not_ready = wait_until(lambda: readyz(node.url) != 200, 10, every=0.05)
            assert not_ready is not None, "/readyz stayed 200 with containerd gone"
            assert not_ready < 5.0
            time.sleep(2.0)  # requests keep flowing into the outage
            ctrd.start()
            up_at = time.monotonic()
            outages.append((down_at, up_at))
            recoveries.append(0.0)
            back = wait_until(lambda: readyz(node.url) == 200, 30)
            assert back is not None, (
                "not ready again after containerd came back: " + node.log()[-4000:]
            )
            recoveries[-1] = back
            time.sleep(1.0)
    assert node.proc is not None and node.proc.pid == pid and node.proc.poll() is None
    outcomes = load.outcomes
    # A blob whose headers went out just before containerd died is cut short: the client
    # sees an aborted body (detectable, retried), never a clean short one. Only in outages.
    aborted = [o for o in outcomes if o.aborted]
    assert all(any(a - 0.5 < o.at < b for a, b in outages) for o in aborted), aborted
    bad = [o for o in outcomes if not o.ok and not o.aborted]
    assert not bad, bad[:5]
    slow = [o for o in outcomes if o.latency > 3.0]
    assert not slow, slow[:5]
    during = [o for o in outcomes if any(a + 0.5 < o.at < b for a, b in outages)]
    assert any(o.status >= 400 for o in during), "no request saw the outage"
    last_up = outages[-1][1]
    after = [o for o in outcomes if o.at > last_up + 1.0 and o.status]
    assert after and all(o.status == 200 for o in after[-20:])
    # After recovery, a tag resolves and a blob streams again.
    resp = httpx.get(node.url + REQUESTS[1][0], timeout=5)
    assert resp.status_code == 200 and resp.content == BLOBS["I"]
    print(
        f"\ncontainerd restart: {len(outages)} outages survived, {len(outcomes)} requests, "
        f"{len(during)} during outages ({sum(o.status >= 400 for o in during)} OCI errors, "
        f"{len(aborted)} bodies cut at the crash), "
        f"max latency {max(o.latency for o in outcomes):.3f}s, ready again after "
        f"{', '.join(f'{r:.1f}s' for r in recoveries)}"
    )


def test_bootstrap_peer_absent_at_start(make_pair: PairFactory) -> None:
    """B boots with an HTTP bootstrap URL naming A before A exists: B keeps retrying, is not
    ready, and becomes ready (and mirrors A's content) once A appears, without a restart."""
    hosts = ["127.0.0.51", "127.0.0.52"]
    registry_port = common_free_port(hosts)
    bootstrap_port = common_free_port(hosts, {registry_port})
    url_a = f"http://{hosts[0]}:{bootstrap_port}/"

    def flags(host: str) -> list[str]:
        return [
            "--bootstrap-kind=http",
            f"--http-bootstrap-addr={host}:{bootstrap_port}",
            f"--http-bootstrap-url={url_a}",
            "--mirror-resolve-timeout=1s",
        ]

    b = make_pair(empty=True, host=hosts[1], registry_port=registry_port, flags=flags(hosts[1]))
    pid = b.spegel.proc.pid
    time.sleep(3.0)
    assert readyz(b.url) == 503, "ready with its only bootstrap peer absent"
    miss = httpx.get(f"{b.url}/v2/library/nginx/manifests/9.9?ns=docker.io", timeout=5)
    assert miss.status_code == 404  # still answers, quickly, while alone
    a = make_pair(host=hosts[0], registry_port=registry_port, flags=flags(hosts[0]))
    assert wait_until(lambda: readyz(a.url) == 200, 20) is not None
    joined = wait_until(lambda: readyz(b.url) == 200, 30)
    assert joined is not None, "B never became ready after its bootstrap peer appeared"
    assert b.spegel.proc is not None and b.spegel.proc.pid == pid

    def mirrored() -> bool:
        resp = httpx.get(f"{b.url}/v2/library/nginx/blobs/{L}?ns=docker.io", timeout=5)
        return resp.status_code == 200 and resp.content == BLOBS["L"]

    assert wait_until(mirrored, 20, every=0.5) is not None, "B never served A's content"
    print(f"\nbootstrap: B ready {joined:.1f}s after A appeared, same PID {pid}")


def test_sigterm_with_concurrent_downloads(make_pair: PairFactory, workdir) -> None:
    """SIGTERM while 8 downloads (6 MiB and 1 MiB layers) are in flight: all complete with the
    right digest, new connections are refused, the process exits 0."""
    builder = ImageBuilder(workdir / "sigterm-images", seed=7)
    image = builder.image("docker.io/reliability/sigterm:v1", [6 * 1024 * 1024, 1024 * 1024])
    pair = make_pair(start=False, flags=["--blob-speed=24MBps", "--shutdown-grace=30s"])
    pair.containerd.import_archive(write_oci_archive([image], workdir / "sigterm.tar"))
    pair.spegel.start()
    node = pair.spegel
    layers = [image.layers[i % 2] for i in range(8)]
    results: list[tuple[int, str, int] | str] = [""] * len(layers)

    def download(i: int) -> None:
        layer = layers[i]
        sha = hashlib.sha256()
        size = 0
        try:
            url = f"{node.url}/v2/reliability/sigterm/blobs/{layer.digest}"
            # The peer header makes the node pace the body (--blob-speed), so it is in flight.
            with httpx.stream("GET", url, headers={"X-Spegel-Mirrored": "true"}, timeout=30) as r:
                for chunk in r.iter_bytes():
                    sha.update(chunk)
                    size += len(chunk)
                results[i] = (r.status_code, "sha256:" + sha.hexdigest(), size)
        except httpx.HTTPError as err:
            results[i] = repr(err)

    threads = [threading.Thread(target=download, args=(i,)) for i in range(len(layers))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert node.proc is not None
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{node.url}/livez", timeout=1)
    for t in threads:
        t.join(40)
    expected = [(200, layer.digest, layer.size) for layer in layers]
    assert results == expected
    assert node.proc.wait(30) == 0
    print(
        f"\nSIGTERM: {len(layers)} downloads finished, exit 0 after "
        f"{time.monotonic() - started:.1f}s"
    )
