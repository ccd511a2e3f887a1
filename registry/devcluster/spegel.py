"""Run a spegel-py node (``manage.py registry``) as a child process, stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from registry.devcluster.daemons import (
    Containerd,
    die_with_parent,
    free_port,
    stop_process,
    wait_for,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SpegelNode:
    base: Path
    containerd: Containerd
    host: str = "127.0.0.1"
    registry_port: int = 0
    metrics_port: int = 0
    router_port: int = 0
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    direct_content: bool = True
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base = Path(self.base)
        self.registry_port = self.registry_port or free_port(self.host)
        self.metrics_port = self.metrics_port or free_port(self.host)
        self.router_port = self.router_port or free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.registry_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}"

    @property
    def log_path(self) -> Path:
        return self.base / "spegel.log"

    def command(self) -> list[str]:
        content = str(self.containerd.content_path) if self.direct_content else ""
        return [
            sys.executable,
            str(REPO_ROOT / "manage.py"),
            "registry",
            f"--registry-addr={self.host}:{self.registry_port}",
            f"--metrics-addr={self.host}:{self.metrics_port}",
            f"--router-addr={self.host}:{self.router_port}",
            f"--containerd-sock={self.containerd.sock}",
            f"--containerd-content-path={content}",
            f"--containerd-registry-config-path={self.containerd.config_path}",
            f"--data-dir={self.base / 'data'}",
            *self.flags,
        ]

    def start(self, timeout: float = 60.0, wait_ready: bool = False) -> SpegelNode:
        self.base.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **self.env}
        env.setdefault("DJANGO_SETTINGS_MODULE", "spegel_site.settings")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.close()
        path = "/readyz" if wait_ready else "/livez"
        wait_for(lambda: self._get(path) == 200, timeout, f"spegel node {self.host}", self.proc)
        return self

    def _get(self, path: str) -> int:
        try:
            return httpx.get(self.url + path, timeout=1.0).status_code
        except httpx.HTTPError:
            return 0

    def ready(self) -> bool:
        return self._get("/readyz") == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; then make sure no child (the routing process) outlives it."""
        if self.proc is None:
            return None
        stop_process(self.proc, timeout)
        code = self.proc.returncode
        self._kill_group()
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the node and everything it started (a node dying hard)."""
        if self.proc is not None:
            self._kill_group()
            self.proc.wait(5)
        self.proc = None

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
