"""containerd, docker-registry and spegel-py nodes started inside the bench's namespaces.

Each process is started directly by ``ip netns exec NS CMD`` (ip execs CMD, so the PID is
the real one) and stopped by that PID. Readiness is checked from inside the namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import wait_until
from bench.netns import Lab
from registry.devcluster.daemons import CONTAINERD_CONFIG, REGISTRY_CONFIG, Containerd
from registry.devcluster.spegel import REPO_ROOT, SpegelNode


def start_in(
    lab: Lab, ns: str, cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [*lab.prefix_cmd(ns), *cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


class NsContainerd(Containerd):
    """A containerd daemon whose pulls go out from namespace ``ns``."""

    def start_ns(self, lab: Lab, ns: str, timeout: float = 20.0) -> NsContainerd:
        for d in (self.base, self.root, self.base / "state", self.base / "cni", self.config_path):
            Path(d).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        (self.base / "config.toml").write_text(
            CONTAINERD_CONFIG.format(
                root=self.root,
                state=self.base / "state",
                sock=self.sock,
                base=self.base,
                config_path=self.config_path,
                discard="false",
            )
        )
        cmd = ["containerd", "--config", str(self.base / "config.toml")]
        self.proc = start_in(lab, ns, cmd, self.base / "containerd.log", self.base)
        wait_until(self._answers, timeout, f"containerd in {ns}", interval=0.1)
        return self


def start_registry(lab: Lab, ns: str, base: Path, addr: str) -> subprocess.Popen[bytes]:
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "config.yml").write_text(REGISTRY_CONFIG.format(data=base / "data", addr=addr))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    cmd = ["docker-registry", "serve", str(base / "config.yml")]
    proc = start_in(lab, ns, cmd, base / "registry.log", base, env)
    wait_until(lambda: lab.http_status(ns, f"http://{addr}/v2/") == 200, 20, "upstream", 0.2)
    return proc


def start_delay_proxy(
    lab: Lab, ns: str, listen: str, target: str, delay: float, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bench.delayproxy", listen, target, str(delay)]
    return start_in(lab, ns, cmd, log, REPO_ROOT)


def start_spegel(lab: Lab, ns: str, node: SpegelNode, timeout: float = 90.0) -> SpegelNode:
    node.base.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "spegel_site.settings",
    }
    node.proc = start_in(lab, ns, node.command(), node.log_path, REPO_ROOT, env)

    def ready() -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise RuntimeError(f"spegel node in {ns} exited: {node.log()[-2000:]}")
        return lab.http_status(ns, node.url + "/readyz") == 200

    wait_until(ready, timeout, f"spegel node in {ns}", interval=0.3)
    return node
