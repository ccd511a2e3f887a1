"""The node's long-lived parts (content store, router, mirror, filters), built once per process.

The ``registry`` command builds a :class:`Node` from the parsed flags and installs it; tests
install their own (e.g. with a memory router). Views only call :func:`get_node`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from registry.auth import BasicAuth
from registry.config import SpegelConfig
from registry.content import ContentSource
from registry.filters import ReferenceFilter
from registry.mirror import Mirror
from routing.router import Router


@dataclass
class Node:
    config: SpegelConfig
    store: ContentSource
    router: Router
    mirror: Mirror
    filters: ReferenceFilter
    started: float = field(default_factory=time.time)
    draining: bool = False
    containerd_ok: bool = True
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, config: SpegelConfig, store: ContentSource, router: Router) -> Node:
        auth = BasicAuth.from_dir(config.basic_auth_dir)
        mirror = Mirror(
            router,
            registry_port=config.registry_port,
            resolve_timeout=config.mirror_resolve_timeout,
            resolve_retries=config.mirror_resolve_retries,
            manifest_timeout=config.mirror_manifest_timeout,
            local_address=_bind_address(config.registry_addr),
            authorization=auth.header if auth else None,
        )
        filters = ReferenceFilter.build(
            config.mirrored_registries,
            config.registry_filters,
            config.resolve_tags,
            config.resolve_latest_tag,
        )
        node = cls(config, store, router, mirror, filters)
        if auth is not None:
            node.extras["auth"] = auth
        return node


def _bind_address(addr: str) -> str | None:
    host = addr.rpartition(":")[0].strip("[]")
    return host if host and host not in ("0.0.0.0", "::") else None


_node: Node | None = None


def install(node: Node | None) -> None:
    global _node
    _node = node


def get_node() -> Node:
    if _node is None:
        raise RuntimeError("no registry node installed (start it with `manage.py registry`)")
    return _node
