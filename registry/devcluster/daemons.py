"""Real daemons for tests, the demo and benchmarks: containerd and the CNCF registry.

Each runs as a plain child process with its own config, directories and socket or loopback
port, and is stopped by its PID. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CONTAINERD_CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      discard_unpacked_layers = {discard}
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "{config_path}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{base}/cni"
"""

REGISTRY_CONFIG = """version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {addr}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _set_pdeathsig() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the kernel SIGTERM the child when its launcher dies, so a killed
    test run or demo never leaves daemons behind. The signal follows the launching *thread*,
    so it is only used from the main thread (a worker thread may end before the daemon)."""
    if threading.current_thread() is threading.main_thread():
        return _set_pdeathsig
    return None


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: everything started is stopped by its PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Containerd:
    """A containerd daemon with its own config, root, state, socket and hosts directory."""

    base: Path
    discard_unpacked_layers: bool = False
    config_path: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base = Path(self.base)
        # Unix socket paths are limited to ~107 bytes.
        self.sock = self.base / "containerd.sock"
        if self.config_path is None:
            self.config_path = self.base / "certs.d"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def content_path(self) -> Path:
        return self.root / "io.containerd.content.v1.content"

    def start(self, timeout: float = 20.0) -> Containerd:
        for d in (self.base, self.root, self.base / "state", self.base / "cni", self.config_path):
            Path(d).mkdir(parents=True, exist_ok=True)
        config = CONTAINERD_CONFIG.format(
            root=self.root,
            state=self.base / "state",
            sock=self.sock,
            base=self.base,
            config_path=self.config_path,
            discard=str(self.discard_unpacked_layers).lower(),
        )
        (self.base / "config.toml").write_text(config)
        log = open(self.base / "containerd.log", "ab")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(self.base / "config.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.close()
        wait_for(self._answers, timeout, "containerd", self.proc)
        return self

    def _answers(self) -> bool:
        if not self.sock.exists():
            return False
        result = subprocess.run(
            ["ctr", "--address", str(self.sock), "version"], capture_output=True, timeout=5
        )
        return result.returncode == 0

    def ctr(self, *args: str, namespace: str = "k8s.io", check: bool = True) -> str:
        result = subprocess.run(
            ["ctr", "--address", str(self.sock), "-n", namespace, *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def import_archive(self, archive: Path, namespace: str = "k8s.io") -> str:
        return self.ctr("images", "import", "--all-platforms", str(archive), namespace=namespace)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def cleanup(self) -> None:
        """Stop and remove the daemon's files (snapshots may be overlay mounts: unmount)."""
        self.stop()
        _umount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def _umount_under(base: Path) -> None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(str(base))]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


@dataclass
class DistributionRegistry:
    """The CNCF distribution registry (Debian ``docker-registry``) on a loopback address."""

    base: Path
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base = Path(self.base)
        if not self.port:
            self.port = free_port(self.host)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    @property
    def log_path(self) -> Path:
        return self.base / "registry.log"

    def start(self, timeout: float = 20.0) -> DistributionRegistry:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "data").mkdir(exist_ok=True)
        (self.base / "config.yml").write_text(
            REGISTRY_CONFIG.format(data=self.base / "data", addr=self.addr)
        )
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.base / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.close()
        wait_for(lambda: port_open(self.host, self.port), timeout, "docker-registry", self.proc)
        return self

    def access_log(self) -> list[str]:
        """Request lines from the access log, e.g. ``GET /v2/test/app/manifests/v1``."""
        if not self.log_path.exists():
            return []
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"GET /v2' in line or '"HEAD /v2' in line:
                start = line.index('"') + 1
                lines.append(line[start : line.index('"', start)])
        return lines

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
