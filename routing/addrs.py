"""Listen and announce addresses of the router, and the host part of a peer's multiaddr."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from multiaddr import Multiaddr


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port``; an empty host means all interfaces."""
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"invalid address {addr!r}: expected host:port")
    return host.strip("[]"), int(port)


def _ip_proto(ip: str) -> str:
    return "ip6" if ipaddress.ip_address(ip).version == 6 else "ip4"


def local_ip() -> str:
    """A non-loopback address of this machine to announce when listening on all interfaces.

    Uses the host name's addresses only (no packet leaves the machine); falls back to 127.0.0.1.
    """
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        infos = []
    ips = [str(info[4][0]) for info in infos]
    routable = [ip for ip in ips if not ipaddress.ip_address(ip).is_loopback]
    # Prefer IPv6 like the reference, else IPv4.
    for ip in sorted(routable, key=lambda ip: ":" not in ip):
        return ip
    return "127.0.0.1"


def listen_and_announce(router_addr: str) -> tuple[Multiaddr, Multiaddr]:
    """``:5001`` listens on 0.0.0.0 and announces the machine's address; ``127.0.0.2:5001``
    listens on and announces exactly that address (loopback is kept when asked for)."""
    host, port = split_addr(router_addr)
    listen_ip = host or "0.0.0.0"
    announce_ip = host if host and not ipaddress.ip_address(host).is_unspecified else local_ip()
    listen = Multiaddr(f"/{_ip_proto(listen_ip)}/{listen_ip}/tcp/{port}")
    announce = Multiaddr(f"/{_ip_proto(announce_ip)}/{announce_ip}/tcp/{port}")
    return listen, announce


def ip_of(addrs: Iterable[Multiaddr]) -> str | None:
    """The first IPv4/IPv6 address among ``addrs`` (the peer's host for registry URLs)."""
    for addr in addrs:
        for proto in ("ip4", "ip6"):
            try:
                value = addr.value_for_protocol(proto)
            except Exception:
                value = None
            if value:
                return str(value)
    return None


def tcp_endpoint(addr: Multiaddr) -> tuple[str, int] | None:
    ip = ip_of([addr])
    try:
        port = addr.value_for_protocol("tcp")
    except Exception:
        return None
    return (ip, int(port)) if ip and port else None
