"""Bootstrap sources: where a node finds its first peers (runs inside the trio daemon).

Each bootstrapper returns candidate peers as ``(peer_id, [multiaddr, ...])``. The node drops
itself from the list, so a bootstrap source that answers with our own address is not an error:
such a node is "alone by design" (C22).

- ``static``: full ``/p2p/`` multiaddrs from ``--static-bootstrap-peers``.
- ``http``: ``GET --http-bootstrap-url`` answers a JSON list of ``{"ID", "Addrs"}`` (the Go
  Spegel's format; a plain-text multiaddr is accepted too). Every node serves its own list on
  ``--http-bootstrap-addr`` (see ``serve_http``).
- ``dns``: A/AAAA records of ``--dns-bootstrap-domain`` give peer IPs but no peer ids. py-libp2p
  cannot dial without a peer id, so each IP is asked for its id over the HTTP bootstrap endpoint
  at ``http://<ip>:<port of --http-bootstrap-addr>/``. Every node must therefore serve
  ``--http-bootstrap-addr`` (same port cluster-wide) when ``dns`` is used.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
import trio
from multiaddr import Multiaddr

from routing.addrs import split_addr

log = logging.getLogger(__name__)

Candidate = tuple[str, list[str]]  # (peer id, multiaddrs without /p2p/)
Resolver = Callable[[str], Awaitable[list[str]]]
HTTP_TIMEOUT = 2.0


def parse_p2p_addr(addr: str) -> Candidate:
    """Split ``/ip4/1.2.3.4/tcp/5001/p2p/<id>`` into the peer id and its transport address."""
    ma = Multiaddr(addr)
    try:
        peer_id = ma.value_for_protocol("p2p")
    except Exception:
        peer_id = None
    if not peer_id:
        raise ValueError(f"bootstrap address {addr!r} has no /p2p/<peer id> part")
    transport = ma.decapsulate(Multiaddr(f"/p2p/{peer_id}"))
    return str(peer_id), [str(transport)]


def addr_info_json(peer_id: str, addrs: Sequence[str]) -> bytes:
    """Our own entry as the Go Spegel's HTTP bootstrapper serves it."""
    return json.dumps([{"ID": peer_id, "Addrs": list(addrs)}]).encode()


def parse_addr_info(body: str) -> list[Candidate]:
    """Parse a JSON list (or one object) of ``{"ID", "Addrs"}``, or plain-text multiaddrs."""
    text = body.strip()
    if text.startswith(("[", "{")):
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
        found: list[Candidate] = []
        for item in items:
            peer_id, addrs = str(item["ID"]), [str(a) for a in item.get("Addrs") or []]
            found.append((peer_id, [str(Multiaddr(a)) for a in addrs]))
        return found
    return [parse_p2p_addr(line.strip()) for line in text.splitlines() if line.strip()]


class Bootstrapper:
    kind = "none"

    async def candidates(self) -> list[Candidate]:
        return []


@dataclass
class StaticBootstrapper(Bootstrapper):
    addrs: Sequence[str]
    kind = "static"

    def __post_init__(self) -> None:
        self._parsed = [parse_p2p_addr(a) for a in self.addrs]  # bad flags fail at start

    async def candidates(self) -> list[Candidate]:
        return list(self._parsed)


async def fetch_addr_info(client: httpx.AsyncClient, url: str) -> list[Candidate]:
    response = await client.get(url, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return parse_addr_info(response.text)


@dataclass
class HTTPBootstrapper(Bootstrapper):
    url: str
    kind = "http"

    async def candidates(self) -> list[Candidate]:
        async with httpx.AsyncClient() as client:
            return await fetch_addr_info(client, self.url)


async def system_resolver(name: str) -> list[str]:
    infos = await trio.socket.getaddrinfo(name, None, proto=trio.socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class DNSBootstrapper(Bootstrapper):
    domain: str
    http_port: int
    own_ips: Sequence[str] = ()
    resolver: Resolver = system_resolver
    kind = "dns"

    async def candidates(self) -> list[Candidate]:
        ips = [ip for ip in await self.resolver(self.domain) if ip not in self.own_ips]
        found: list[Candidate] = []
        async with httpx.AsyncClient() as client:
            for ip in ips:
                host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
                try:
                    found.extend(await fetch_addr_info(client, f"http://{host}:{self.http_port}/"))
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    log.debug("dns bootstrap: %s has no answer yet: %s", ip, exc)
        if ips and not found:
            # Other nodes exist but none answered yet: not alone, try again later.
            raise ConnectionError(f"no bootstrap answer from {', '.join(ips)}")
        return found


def static_resolver(answers: Sequence[str]) -> Resolver:
    """A resolver with fixed answers (tests; never touches DNS)."""

    async def resolve(name: str) -> list[str]:
        return list(answers)

    return resolve


def make_bootstrapper(
    kind: str,
    *,
    static_peers: Sequence[str] = (),
    http_url: str = "",
    dns_domain: str = "",
    http_addr: str = "",
    own_ips: Sequence[str] = (),
    resolver: Resolver | None = None,
) -> Bootstrapper:
    if kind in ("", "none"):
        return Bootstrapper()
    if kind == "static":
        return StaticBootstrapper(static_peers)
    if kind == "http":
        if not http_url:
            raise ValueError("--bootstrap-kind=http needs --http-bootstrap-url")
        return HTTPBootstrapper(http_url)
    if kind == "dns":
        if not dns_domain:
            raise ValueError("--bootstrap-kind=dns needs --dns-bootstrap-domain")
        if not http_addr:
            raise ValueError("--bootstrap-kind=dns needs --http-bootstrap-addr (peer id lookup)")
        return DNSBootstrapper(
            dns_domain, split_addr(http_addr)[1], own_ips, resolver or system_resolver
        )
    raise ValueError(f"unknown --bootstrap-kind {kind!r} (dns, static or http)")


async def serve_http(
    addr: str,
    body: Callable[[], bytes],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer every HTTP GET on ``addr`` with ``body()`` (our own addresses as JSON)."""
    host, port = split_addr(addr)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(HTTP_TIMEOUT):
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 8192:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    data += chunk
                payload = body()
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                )
                await stream.send_all(head.encode() + payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    listeners = await trio.open_tcp_listeners(port, host=host or None)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)
