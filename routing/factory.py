"""Build the node's router from its settings: the libp2p routing process."""

from __future__ import annotations

import os
import tempfile

from registry.config import SpegelConfig
from routing.client import P2PRouter
from routing.router import Router


def socket_path(config: SpegelConfig) -> str:
    """The routing process's Unix socket: under the data dir, else a private temp dir."""
    if config.data_dir:
        os.makedirs(config.data_dir, exist_ok=True)
        return os.path.join(config.data_dir, "router.sock")
    return os.path.join(tempfile.mkdtemp(prefix="spegel-router-"), "router.sock")


async def build_router(config: SpegelConfig) -> Router:
    router = P2PRouter.from_config(config, socket_path(config))
    await router.start()
    return router
