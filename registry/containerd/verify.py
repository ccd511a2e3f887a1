"""Check that containerd will really ask us: its CRI config must read our hosts directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_cri_status(info: dict[str, Any], registry_config_path: str) -> Verdict:
    """Judge CRI ``Status(verbose=True).info`` (values JSON-decoded).

    Fatal: ``config_path`` unset or not including our directory, or
    ``discard_unpacked_layers`` true (layers would be advertised but absent). A containerd that
    does not report its config (containerd 2.x) cannot be checked: a warning, not fatal (C26).
    """
    verdict = Verdict()
    config = info.get("config")
    if not isinstance(config, dict):
        verdict.warnings.append(
            "containerd does not report its CRI config; skipping the config_path check"
        )
        return verdict
    registry = config.get("registry") or {}
    config_path = str(registry.get("configPath") or "")
    if not config_path:
        verdict.errors.append(
            "containerd's CRI registry config_path is not set: containerd will never ask the "
            f'mirror. Set [plugins."io.containerd.grpc.v1.cri".registry] config_path = '
            f'"{registry_config_path}" and remove any legacy registry.mirrors block.'
        )
    else:
        wanted = os.path.normpath(registry_config_path)
        paths = [os.path.normpath(p) for p in config_path.split(":") if p]
        if wanted not in paths:
            verdict.errors.append(
                f"containerd's config_path {config_path!r} does not include "
                f"{registry_config_path!r}, where the mirror configuration is written"
            )
    if registry.get("mirrors"):
        verdict.warnings.append(
            "legacy registry.mirrors is set; containerd ignores it with config_path"
        )
    containerd = config.get("containerd") or {}
    if containerd.get("discardUnpackedLayers"):
        verdict.errors.append(
            "containerd discards unpacked layers (discard_unpacked_layers = true): layers "
            "would be missing from the content store. Set it to false."
        )
    return verdict
