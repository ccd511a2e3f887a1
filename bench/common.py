"""Shared helpers: statistics, curl transfers, /proc sampling, process bookkeeping."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.devcluster.daemons import stop_process

MiB = 1 << 20
GiB = 1 << 30


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100.0 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass
class Transfer:
    bytes: int
    seconds: float
    failures: int = 0

    @property
    def rate(self) -> float:
        """Bytes per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def curl_cmd(url: str, headers: dict[str, str] | None = None) -> list[str]:
    cmd = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}", url]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    return cmd


def curl_parallel(
    urls: Sequence[str],
    headers: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 300.0,
    allow_failures: bool = False,
) -> Transfer:
    """Start one curl per URL at once; total bytes over the wall time until the last ends."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*prefix, *curl_cmd(u, headers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for u in urls
    ]
    total = 0
    errors = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                errors.append(err.decode(errors="replace").strip())
            else:
                total += int(out or b"0")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.perf_counter() - start
    if errors and (not allow_failures or len(errors) == len(procs)):
        raise RuntimeError(f"curl failed: {errors[:3]}")
    return Transfer(total, elapsed, len(errors))


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# -- /proc sampling ------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                out += [int(p) for p in text.split()]
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


def rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return 0.0


def idle_cpu_percent(pids: Sequence[int], seconds: float) -> dict[int, float]:
    """CPU used by each pid over ``seconds``, in percent of one core."""
    before = {p: cpu_seconds(p) for p in pids}
    time.sleep(seconds)
    return {p: round(100.0 * (cpu_seconds(p) - before[p]) / seconds, 3) for p in pids}


@dataclass
class RssSampler:
    """Samples the peak RSS of process trees in a thread while a load runs."""

    roots: dict[str, int]
    interval: float = 0.1
    peak: dict[str, int] = field(default_factory=dict)
    peak_per_process: dict[str, dict[str, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        for name, root in self.roots.items():
            pids = tree(root)
            per = {str(p): rss_bytes(p) for p in pids}
            total = sum(per.values())
            if total > self.peak.get(name, 0):
                self.peak[name] = total
                self.peak_per_process[name] = per

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)
            self._sample()


# -- processes ----------------------------------------------------------------------------


def stop_pid(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """SIGTERM by PID, wait, then SIGKILL (the dev cluster's own helper)."""
    stop_process(proc, timeout)


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def random_file(path: Path, size: int, chunk: int = 16 * MiB) -> Path:
    """``size`` bytes of random data (incompressible, like a gzip layer)."""
    left = size
    with open(path, "wb") as fh:
        while left > 0:
            n = min(chunk, left)
            fh.write(os.urandom(n))
            left -= n
    return path


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MiB):
            h.update(block)
    return "sha256:" + h.hexdigest()
