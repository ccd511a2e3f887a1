"""The commands as the init container and the post-delete hook run them: real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from registry.devcluster.daemons import free_port, port_open
from tests.config.helpers import MUT, MUT2, load, snapshot

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_configuration_process_ok_and_bad(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    ok = manage(
        "configuration",
        f"--containerd-registry-config-path={path}",
        "--mirrored-registries",
        "https://docker.io",
        "--mirror-targets",
        MUT,
        MUT2,
    )
    assert ok.returncode == 0, ok.stderr
    assert list(load(path / "docker.io/hosts.toml")["host"]) == [MUT, MUT2]
    before = snapshot(path)

    bad = manage(
        "configuration",
        f"--containerd-registry-config-path={path}",
        "--mirrored-registries",
        "https://docker.io/v2",
        "--mirror-targets",
        MUT,
    )
    assert bad.returncode == 1
    assert "mirrored registries entry 'https://docker.io/v2' has a path '/v2'" in bad.stderr
    assert snapshot(path) == before


def test_configuration_process_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    result = manage(
        "configuration",
        env={
            "CONTAINERD_REGISTRY_CONFIG_PATH": str(path),
            "MIRRORED_REGISTRIES": "*",
            "MIRROR_TARGETS": MUT,
            "RESOLVE_TAGS": "false",
        },
    )
    assert result.returncode == 0, result.stderr
    assert load(path / "_default/hosts.toml") == {
        "host": {MUT: {"capabilities": ["pull"], "dial_timeout": "200ms"}}
    }
    missing = manage("configuration", env={"CONTAINERD_REGISTRY_CONFIG_PATH": str(path)})
    assert missing.returncode == 1
    assert "mirror targets are required" in missing.stderr


def test_cleanup_process_serves_readyz_until_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    (path / "ghcr.io").mkdir(parents=True)
    (path / "ghcr.io/hosts.toml").write_text("server = 'https://ghcr.io'\n")
    original = snapshot(path)
    assert (
        manage(
            "configuration", f"--containerd-registry-config-path={path}", f"--mirror-targets={MUT}"
        ).returncode
        == 0
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "cleanup",
            f"--containerd-registry-config-path={path}",
            f"--addr=127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
        assert snapshot(path) == original
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
