"""Read containerd's ``config.toml`` and say whether containerd will read our hosts files (C26).

This check works from the file alone, so it also covers containerd 2.x, whose CRI Status no
longer reports its config. The registry settings live under a different plugin per version:

* no ``version`` (v1): ``plugins.cri.registry``
* ``version = 2`` (containerd 1.x): ``plugins."io.containerd.grpc.v1.cri".registry``
* ``version = 3`` (containerd 2.x): ``plugins."io.containerd.cri.v1.images".registry``
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from registry.containerd.verify import Verdict

_CRI_PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.images"}


def check_containerd_config(text: str, hosts_dir: str) -> Verdict:
    """Errors when containerd would ignore ``hosts_dir``; warnings when it may bypass it."""
    verdict = Verdict()
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        verdict.warnings.append(f"cannot parse containerd config ({err}); skipping the check")
        return verdict
    version = config.get("version", 1)
    if version not in _CRI_PLUGIN:
        verdict.warnings.append(f"unknown containerd config version {version!r}; skipping")
        return verdict
    name = _CRI_PLUGIN[version]
    cri = _table(_table(config, "plugins"), name)
    registry = _table(cri, "registry")
    config_path = str(registry.get("config_path") or "")
    section = f'[plugins."{name}".registry]'
    if not config_path:
        hint = " and remove the legacy registry.mirrors block" if registry.get("mirrors") else ""
        verdict.errors.append(
            f"containerd's {section} config_path is not set, so containerd never reads "
            f'hosts.toml: set config_path = "{hosts_dir}"{hint}'
        )
    else:
        wanted = os.path.normpath(hosts_dir)
        if wanted not in [os.path.normpath(p) for p in config_path.split(":") if p]:
            verdict.errors.append(
                f"containerd's {section} config_path {config_path!r} does not include "
                f"{hosts_dir!r}, where the mirror configuration is written"
            )
        if registry.get("mirrors"):
            verdict.errors.append(
                f"containerd's {section} has both config_path and the legacy mirrors block, "
                "which containerd refuses; remove registry.mirrors"
            )
    discard_owner = cri if version == 3 else _table(cri, "containerd")
    if discard_owner.get("discard_unpacked_layers"):
        verdict.errors.append(
            "containerd discards unpacked layers (discard_unpacked_layers = true): layers "
            "would be missing from the content store. Set it to false."
        )
    if version == 3 and cri.get("use_local_image_pull") is False:
        verdict.warnings.append(
            "use_local_image_pull = false: containerd 2.1+ pulls through the transfer service "
            "and may bypass hosts.toml; set use_local_image_pull = true under "
            f'[plugins."{name}"]'
        )
    return verdict


def _table(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}
