"""Real routing daemons on 127.0.0.x: advertise, resolve, withdraw, kill, late join."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.routing.conftest import Factory, found, free_port, wait_for

pytestmark = pytest.mark.slow


async def node_id(router) -> str:  # type: ignore[no-untyped-def]
    return str((await router.self_info())["peer_id"])


async def static_cluster(daemons: Factory, ips: list[str], *args: str):  # type: ignore[no-untyped-def]
    first = await daemons(ips[0], *args)
    addr = (await first.self_addrs())[0]
    rest = await asyncio.gather(
        *(
            daemons(ip, "--bootstrap-kind", "static", "--static-bootstrap-peers", addr, *args)
            for ip in ips[1:]
        )
    )
    nodes = [first, *rest]
    for node in nodes:

        async def meshed(node=node) -> bool:  # type: ignore[no-untyped-def]
            return len(await node.peers()) == len(nodes) - 1

        assert await wait_for(meshed, 10)
        assert await node.ready()
    return nodes


async def test_static_advertise_found_from_b_and_c_with_host(daemons: Factory) -> None:
    a, b, c = await static_cluster(daemons, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    a_id = await node_id(a)
    keys = [f"docker.io/library/nginx@sha256:{i:064x}" for i in range(200)]
    await a.advertise(keys)
    for other in (b, c):
        peers = [p async for p in other.resolve(keys[7], 3, 0.5)]
        assert [(p.peer_id, p.host) for p in peers] == [(a_id, "127.0.0.2")]
        stats = await other.stats()
        assert stats["by_provider"][a_id] == 200  # every record arrived, counted
    # Never self, and a key nobody holds yields nothing.
    assert await found(a, keys[0]) == set()
    assert await found(b, "absent") == set()


async def test_two_providers_both_found_deduplicated(daemons: Factory) -> None:
    a, b, c = await static_cluster(daemons, ["127.0.0.5", "127.0.0.6", "127.0.0.7"])
    await a.advertise(["shared"])
    await b.advertise(["shared"])
    peers = [p async for p in c.resolve("shared", 0, 0.3)]
    assert sorted(p.host for p in peers) == ["127.0.0.5", "127.0.0.6"]
    assert len({p.peer_id for p in peers}) == 2
    assert [p.host async for p in a.resolve("shared", 0, 0.3)] == ["127.0.0.6"]


async def test_withdrawn_key_expires_remotely(daemons: Factory) -> None:
    ttl = ("--record-ttl", "2")
    a, b = await static_cluster(daemons, ["127.0.0.8", "127.0.0.9"], *ttl)
    await a.advertise(["gone", "kept"])
    assert await found(b, "gone") == {await node_id(a)}
    await a.withdraw(["gone"])
    assert await found(a, "gone") == set()
    await asyncio.sleep(2.5)
    assert await found(b, "gone") == set()
    assert (await a.stats())["providing"] == 1


async def test_reprovide_keeps_records_alive(daemons: Factory) -> None:
    args = ("--record-ttl", "2", "--reprovide-interval", "0.7")
    a, b = await static_cluster(daemons, ["127.0.0.10", "127.0.0.11"], *args)
    await a.advertise(["fresh"])
    await asyncio.sleep(3)
    assert await found(b, "fresh") == {await node_id(a)}


async def test_killed_node_stops_being_returned(daemons: Factory) -> None:
    a, b, c = await static_cluster(daemons, ["127.0.0.12", "127.0.0.13", "127.0.0.14"])
    await a.advertise(["k"])
    await b.advertise(["k"])
    assert len(await found(c, "k")) == 2
    assert a.pid is not None
    os.kill(a.pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    assert await found(c, "k", 1.0) == {await node_id(b)}
    assert await found(c, "k", 1.0) == {await node_id(b)}  # and it stays out


async def test_late_joiner_finds_existing_keys(daemons: Factory) -> None:
    a, b = await static_cluster(daemons, ["127.0.0.15", "127.0.0.16"])
    await a.advertise([f"old-{i}" for i in range(50)])
    addr = (await b.self_addrs())[0]
    late = await daemons(
        "127.0.0.17", "--bootstrap-kind", "static", "--static-bootstrap-peers", addr
    )
    assert await wait_for(late.ready, 10)
    assert await found(late, "old-42") == {await node_id(a)}
    # The existing node pushed all its records to the newcomer.
    a_id = await node_id(a)

    async def synced() -> bool:
        return (await late.stats())["by_provider"].get(a_id) == 50

    assert await wait_for(synced, 10)


async def test_http_bootstrap(daemons: Factory) -> None:
    port = free_port("127.0.0.18")
    http = f"127.0.0.18:{port}"
    url = f"http://{http}/"
    a = await daemons(
        "127.0.0.18",
        "--bootstrap-kind",
        "http",
        "--http-bootstrap-addr",
        http,
        "--http-bootstrap-url",
        url,
    )
    assert await wait_for(a.ready, 5)  # the URL names itself: alone by design
    assert await a.peers() == []
    b = await daemons("127.0.0.19", "--bootstrap-kind", "http", "--http-bootstrap-url", url)
    c = await daemons("127.0.0.20", "--bootstrap-kind", "http", "--http-bootstrap-url", url)
    for node in (b, c):
        assert await wait_for(node.ready, 10)
    await b.advertise(["via-http"])
    assert await found(c, "via-http") == {await node_id(b)}
    assert await found(a, "via-http") == {await node_id(b)}
    assert {p["host"] for p in await a.peers()} == {"127.0.0.19", "127.0.0.20"}


async def test_dns_bootstrap_with_self_in_answers_and_late_peer(daemons: Factory) -> None:
    port = free_port("127.0.0.21")
    answers = "127.0.0.21,127.0.0.22"
    args = (
        "--bootstrap-kind",
        "dns",
        "--dns-bootstrap-domain",
        "spegel-bootstrap",
        "--dns-static-answers",
        answers,
    )
    a = await daemons("127.0.0.21", *args, "--http-bootstrap-addr", f"127.0.0.21:{port}")
    await asyncio.sleep(1)  # 127.0.0.22 is not up yet: a keeps retrying quietly
    assert not await a.ready()
    b = await daemons("127.0.0.22", *args, "--http-bootstrap-addr", f"127.0.0.22:{port}")
    assert await wait_for(b.ready, 10)
    assert await wait_for(a.ready, 15)
    await a.advertise(["via-dns"])
    assert await found(b, "via-dns") == {await node_id(a)}


async def test_single_dns_node_is_alone_and_ready(daemons: Factory) -> None:
    port = free_port("127.0.0.23")
    a = await daemons(
        "127.0.0.23",
        "--bootstrap-kind",
        "dns",
        "--dns-bootstrap-domain",
        "x",
        "--dns-static-answers",
        "127.0.0.23",
        "--http-bootstrap-addr",
        f"127.0.0.23:{port}",
    )
    assert await wait_for(a.ready, 5)
    assert await a.peers() == []
