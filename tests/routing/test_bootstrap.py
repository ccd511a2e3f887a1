import json

import pytest
import trio

from routing.bootstrap import (
    Bootstrapper,
    DNSBootstrapper,
    HTTPBootstrapper,
    StaticBootstrapper,
    addr_info_json,
    make_bootstrapper,
    parse_addr_info,
    parse_p2p_addr,
    serve_http,
    static_resolver,
)
from tests.routing.conftest import free_port

PEER = "12D3KooWEGs8Z7sqm3H2JUkvHCNcLR1rUVk2k9KaLoeC3yoPd2Ee"


def test_parse_p2p_addr() -> None:
    assert parse_p2p_addr(f"/ip4/127.0.0.2/tcp/5001/p2p/{PEER}") == (
        PEER,
        ["/ip4/127.0.0.2/tcp/5001"],
    )


@pytest.mark.parametrize("bad", ["/ip4/127.0.0.2/tcp/5001", "not a multiaddr"])
def test_parse_p2p_addr_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_p2p_addr(bad)


@pytest.mark.parametrize(
    "body",
    [
        addr_info_json(PEER, ["/ip4/127.0.0.2/tcp/5001"]).decode(),
        json.dumps({"ID": PEER, "Addrs": ["/ip4/127.0.0.2/tcp/5001"]}),
        f"/ip4/127.0.0.2/tcp/5001/p2p/{PEER}\n",
    ],
)
def test_parse_addr_info_formats(body: str) -> None:
    assert parse_addr_info(body) == [(PEER, ["/ip4/127.0.0.2/tcp/5001"])]


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("", {}, Bootstrapper),
        ("static", {"static_peers": [f"/ip4/127.0.0.2/tcp/1/p2p/{PEER}"]}, StaticBootstrapper),
        ("http", {"http_url": "http://127.0.0.2:5002/"}, HTTPBootstrapper),
        ("dns", {"dns_domain": "spegel", "http_addr": ":5002"}, DNSBootstrapper),
    ],
)
def test_make_bootstrapper(kind: str, kwargs: dict[str, object], expected: type) -> None:
    assert type(make_bootstrapper(kind, **kwargs)) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("http", {}, "http-bootstrap-url"),
        ("dns", {"dns_domain": "x"}, "http-bootstrap-addr"),
        ("dns", {"http_addr": ":1"}, "dns-bootstrap-domain"),
        ("kubernetes", {}, "unknown"),
        ("static", {"static_peers": ["/ip4/127.0.0.2/tcp/1"]}, "/p2p/"),
    ],
)
def test_make_bootstrapper_errors(kind: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_bootstrapper(kind, **kwargs)  # type: ignore[arg-type]


def test_dns_bootstrap_asks_each_ip_for_its_id_and_skips_own_ip() -> None:
    port = free_port("127.0.0.2")
    others = {"127.0.0.2": "peer-two", "127.0.0.3": "peer-three"}

    async def main() -> list[tuple[str, list[str]]]:
        async with trio.open_nursery() as nursery:
            for ip, peer in others.items():
                await nursery.start(
                    serve_http,
                    f"{ip}:{port}",
                    lambda ip=ip, peer=peer: addr_info_json(peer, [f"/ip4/{ip}/tcp/5001"]),
                )
            dns = DNSBootstrapper(
                "spegel-bootstrap",
                port,
                own_ips=["127.0.0.3"],
                resolver=static_resolver(["127.0.0.2", "127.0.0.3", "127.0.0.9"]),
            )
            found = await dns.candidates()
            nursery.cancel_scope.cancel()
        return found

    # 127.0.0.3 is us (skipped), 127.0.0.9 serves nothing (skipped quietly).
    assert trio.run(main) == [("peer-two", ["/ip4/127.0.0.2/tcp/5001"])]
