"""C26: containerd's config.toml (v2 and v3) and its CRI Status, judged before we rely on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError

from registry.containerd.preflight import check_containerd_config
from registry.containerd.verify import verify_cri_status
from tests.config.helpers import MUT, configure

CERTS_D = "/etc/containerd/certs.d"

V2_LEGACY = """
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = ""
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["https://mirror.gcr.io"]
"""
V3 = f"""
version = 3
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '{CERTS_D}'
"""
V3_TRANSFER = f"""
version = 3
[plugins.'io.containerd.cri.v1.images']
  use_local_image_pull = false
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '{CERTS_D}'
"""


def test_c26a_v2_without_config_path_and_legacy_mirrors() -> None:
    verdict = check_containerd_config(V2_LEGACY, CERTS_D)
    assert not verdict.ok
    (error,) = verdict.errors
    assert "config_path is not set" in error
    assert f'config_path = "{CERTS_D}"' in error
    assert "remove the legacy registry.mirrors block" in error


def test_c26b_v3_config_path_passes() -> None:
    verdict = check_containerd_config(V3, CERTS_D)
    assert verdict.ok and verdict.warnings == []


def test_c26c_v3_transfer_service_warns() -> None:
    verdict = check_containerd_config(V3_TRANSFER, CERTS_D)
    assert verdict.ok
    (warning,) = verdict.warnings
    assert "use_local_image_pull = true" in warning


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
            'config_path = "/other:/another"\n',
            "does not include",
        ),
        (
            f'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
            f'config_path = "{CERTS_D}"\n'
            '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
            'endpoint = ["https://m"]\n',
            "both config_path and the legacy mirrors",
        ),
        (
            f'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
            f"discard_unpacked_layers = true\n"
            f'[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "{CERTS_D}"\n',
            "discard_unpacked_layers",
        ),
        (
            f"version = 3\n[plugins.'io.containerd.cri.v1.images']\n"
            f"discard_unpacked_layers = true\n"
            f"[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '{CERTS_D}'\n",
            "discard_unpacked_layers",
        ),
        ("[plugins.cri.registry]\nconfig_path = ''\n", '[plugins."cri".registry]'),
    ],
)
def test_more_fatal_configs(text: str, fragment: str) -> None:
    verdict = check_containerd_config(text, CERTS_D)
    assert not verdict.ok
    assert any(fragment in e for e in verdict.errors), verdict.errors


def test_path_list_including_ours_passes() -> None:
    text = (
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
        f'config_path = "/x:{CERTS_D}/"\n'
    )
    assert check_containerd_config(text, CERTS_D).ok


@pytest.mark.parametrize("text", ["version = 2\n[plugins\n", "version = 9\n"])
def test_unreadable_config_is_skipped_with_a_warning(text: str) -> None:
    verdict = check_containerd_config(text, CERTS_D)
    assert verdict.ok and len(verdict.warnings) == 1


def test_configuration_refuses_to_write_on_fatal_preflight(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(V2_LEGACY)
    hosts = tmp_path / "certs.d"
    with pytest.raises(CommandError, match="config_path is not set"):
        configure(
            hosts,
            "--mirror-targets",
            MUT,
            f"--containerd-config-file={config_file}",
        )
    assert not hosts.exists()


def test_configuration_writes_after_passing_preflight(tmp_path: Path) -> None:
    hosts = tmp_path / "certs.d"
    config_file = tmp_path / "config.toml"
    config_file.write_text(V3_TRANSFER.replace(CERTS_D, str(hosts)))
    configure(hosts, "--mirror-targets", MUT, f"--containerd-config-file={config_file}")
    assert (hosts / "_default/hosts.toml").is_file()


def cri_info(config_path: str | None = CERTS_D, discard: bool = False) -> dict[str, Any]:
    registry: dict[str, Any] = {}
    if config_path is not None:
        registry["configPath"] = config_path
    return {"config": {"registry": registry, "containerd": {"discardUnpackedLayers": discard}}}


@pytest.mark.parametrize(
    ("info", "ok", "fragment"),
    [
        (cri_info(None), False, "config_path is not set"),
        (cri_info(""), False, "config_path is not set"),
        (cri_info("/a:/b"), False, "does not include"),
        (cri_info(f"/a:{CERTS_D}"), True, ""),
        (cri_info(CERTS_D), True, ""),
        (cri_info(CERTS_D, discard=True), False, "discard_unpacked_layers"),
    ],
)
def test_verify_cri_status(info: dict[str, Any], ok: bool, fragment: str) -> None:
    verdict = verify_cri_status(info, CERTS_D)
    assert verdict.ok is ok
    if fragment:
        assert any(fragment in e for e in verdict.errors), verdict.errors


def test_verify_cri_status_without_config_only_warns() -> None:
    verdict = verify_cri_status({"lastCNILoadStatus": "OK"}, CERTS_D)
    assert verdict.ok
    assert len(verdict.warnings) == 1
