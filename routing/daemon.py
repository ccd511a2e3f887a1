"""The routing process: ``python -m routing.daemon --socket PATH [router flags]``.

py-libp2p's DHT costs ~10 ms of CPU per message, so it runs in its own process (trio) and the
web process talks to it over a Unix socket with JSON lines (see ``routing.client``).

Requests are ``{"id": n, "op": ..., ...}``; every reply line carries the request's ``id``.
``resolve`` answers with zero or more ``{"id", "peer": {"peer_id", "host"}}`` lines, each sent
as soon as the peer is known, then ``{"id", "done": true}``. Other ops answer one line with
``"result"`` (or ``"error"``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from registry.logs import JsonFormatter
from routing.addrs import ip_of
from routing.bootstrap import addr_info_json, make_bootstrapper, serve_http, static_resolver
from routing.node import NodeOptions, RoutingNode
from routing.router import Peer

log = logging.getLogger("routing.daemon")
MAX_LINE = 16 * 1024 * 1024


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m routing.daemon", description=__doc__)
    p.add_argument("--socket", required=True, help="Unix socket path for the IPC server.")
    p.add_argument("--router-addr", default=":5001")
    p.add_argument("--bootstrap-kind", default="", choices=["", "dns", "static", "http"])
    p.add_argument("--dns-bootstrap-domain", default="")
    p.add_argument("--static-bootstrap-peers", nargs="*", default=[])
    p.add_argument("--http-bootstrap-addr", default="")
    p.add_argument("--http-bootstrap-url", default="")
    p.add_argument("--data-dir", default="")
    p.add_argument("--log-level", default="INFO")
    # Test and benchmark knobs, not part of the product's flag table.
    hidden = argparse.SUPPRESS
    p.add_argument("--record-ttl", type=float, default=19 * 60.0, help=hidden)
    p.add_argument("--reprovide-interval", type=float, default=15 * 60.0, help=hidden)
    p.add_argument("--dns-static-answers", default="", help=hidden)
    return p.parse_args(argv)


class IPCServer:
    def __init__(self, node: RoutingNode) -> None:
        self.node = node

    async def handle(self, request: dict[str, Any], send: Any) -> None:
        rid, op = request.get("id"), request.get("op")
        node = self.node
        try:
            if op == "resolve":

                async def emit(peer: Peer) -> None:
                    await send({"id": rid, "peer": {"peer_id": peer.peer_id, "host": peer.host}})

                await node.resolve(
                    str(request["key"]), int(request["count"]), float(request["timeout"]), emit
                )
                await send({"id": rid, "done": True})
                return
            result: Any
            if op == "ready":
                result = node.ready()
            elif op == "advertise":
                await node.advertise([str(k) for k in request["keys"]])
                result = True
            elif op == "withdraw":
                node.withdraw([str(k) for k in request["keys"]])
                result = True
            elif op == "self":
                addrs = node.self_addrs()
                result = {
                    "peer_id": str(node.peer_id),
                    "addrs": addrs,
                    "host": ip_of(node.announce),
                    "pid": os.getpid(),
                }
            elif op == "peers":
                result = node.peers()
            elif op == "stats":
                result = node.stats()
            elif op == "ping":
                result = "pong"
            else:
                raise ValueError(f"unknown op {op!r}")
            await send({"id": rid, "result": result})
        except Exception as exc:
            log.warning("ipc %s failed: %r", op, exc)
            await send({"id": rid, "error": f"{type(exc).__name__}: {exc}"})

    async def serve_connection(self, stream: trio.SocketStream) -> None:
        lock = trio.Lock()

        async def send(obj: dict[str, Any]) -> None:
            async with lock:
                await stream.send_all(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

        buffer = b""
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    if len(buffer) > MAX_LINE:
                        raise ValueError("IPC line too long")
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            nursery.start_soon(self.handle, json.loads(line), send)
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError) as exc:
            log.debug("ipc connection closed: %r", exc)

    async def serve(self, path: str, task_status: trio.TaskStatus[None]) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket from a killed daemon
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(128)
        task_status.started()
        await trio.serve_listeners(self.serve_connection, [trio.SocketListener(sock)])


async def main(args: argparse.Namespace) -> None:
    own_ips: list[str] = []
    resolver = None
    if args.dns_static_answers:
        resolver = static_resolver([a for a in args.dns_static_answers.split(",") if a])
    node = RoutingNode(
        NodeOptions(
            router_addr=args.router_addr,
            data_dir=args.data_dir,
            record_ttl=args.record_ttl,
            reprovide_interval=args.reprovide_interval,
        ),
        make_bootstrapper(
            args.bootstrap_kind,
            static_peers=args.static_bootstrap_peers,
            http_url=args.http_bootstrap_url,
            dns_domain=args.dns_bootstrap_domain,
            http_addr=args.http_bootstrap_addr,
            own_ips=own_ips,
            resolver=resolver,
        ),
    )
    own_ips.extend(ip for ip in [ip_of(node.announce)] if ip)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            if args.http_bootstrap_addr:
                await nursery.start(
                    serve_http,
                    args.http_bootstrap_addr,
                    lambda: addr_info_json(str(node.peer_id), [str(a) for a in node.announce]),
                )
            await nursery.start(IPCServer(node).serve, args.socket)
            nursery.start_soon(_exit_with_parent, nursery.cancel_scope)
            log.info(
                "routing node up", extra={"peer": str(node.peer_id), "addrs": node.self_addrs()}
            )
            async for signum in signals:
                log.info("stopping routing node on signal %d", signum)
                nursery.cancel_scope.cancel()
                break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)


async def _exit_with_parent(scope: trio.CancelScope) -> None:
    """The registry process owns us: if it dies (even by SIGKILL), stop advertising."""
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 (no event exists for this)
        await trio.sleep(0.5)
    log.warning("parent process is gone; stopping routing node")
    scope.cancel()


def run(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The same JSON lines as the registry process: one format in the pod's log stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    trio.run(main, args)


if __name__ == "__main__":
    run()
