"""Bring one node up inside the running loop: containerd, checks, router, state, events."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from registry import metrics
from registry.config import split_addr
from registry.containerd.client import ContainerdClient
from registry.containerd.verify import verify_cri_status
from registry.content import ContainerdStore
from registry.filters import registry_host
from registry.node import Node, install
from registry.state import StateTracker
from registry.throttle import Throttle

if TYPE_CHECKING:
    from registry.runtime import NodeRuntime

logger = logging.getLogger("registry.startup")


async def wait_for_containerd(client: ContainerdClient, timeout: float = 60.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    delay = 0.1
    while True:
        try:
            return await client.version(timeout=2)
        except Exception as err:
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"containerd at {client.sock} is not answering: {err}") from err
            logger.info("waiting for containerd", extra={"sock": client.sock})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def start_node(runtime: NodeRuntime) -> Node:
    from routing.factory import build_router

    config = runtime.config
    client = ContainerdClient(config.containerd_sock, config.containerd_namespace)
    version = await wait_for_containerd(client)
    logger.info("containerd connected", extra={"version": version})
    if config.verify_containerd_config:
        verdict = verify_cri_status(
            await client.cri_status(), config.containerd_registry_config_path
        )
        for warning in verdict.warnings:
            logger.warning(warning)
        if not verdict.ok:
            for error in verdict.errors:
                logger.error(error)
            raise SystemExit(1)
    store = ContainerdStore(client, config.containerd_content_path)
    router = await build_router(config)
    node = Node.build(config, store, router)
    if config.blob_speed:
        node.extras["throttle"] = Throttle.from_rate(config.blob_speed)
    metrics.allow_registries({registry_host(u) for u in config.mirrored_registries})
    install(node)

    def health(ok: bool) -> None:
        node.containerd_ok = ok

    tracker = StateTracker(client, store, router, node.filters, on_health=health)
    node.extras["tracker"] = tracker
    runtime.tasks.append(asyncio.create_task(tracker.run(), name="state-tracker"))

    await _start_visualize(runtime, node)

    async def close() -> None:
        await node.mirror.close()
        await router.close()
        await client.close()

    runtime.on_stop.append(close)
    return node


async def _start_visualize(runtime: NodeRuntime, node: Node) -> None:
    """Admin database, persisted visualize events (optional), the measure page's hooks."""
    from asgiref.sync import sync_to_async

    from visualize import hooks
    from visualize import runtime as visualize_runtime

    # The admin login needs its tables even when no history is kept.
    await sync_to_async(visualize_runtime.prepare_database, thread_sensitive=False)()
    await visualize_runtime.astart()
    runtime.on_stop.append(visualize_runtime.astop)
    host, port = split_addr(node.config.registry_addr)
    local = host if host and host not in ("0.0.0.0", "::") else "127.0.0.1"
    local = f"[{local}]" if ":" in local else local
    hooks.configure_measure(hooks.router_resolver(node.router), f"http://{local}:{port}")
