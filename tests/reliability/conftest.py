"""Reliability suite helpers: private containerd + node pairs, process meters, OCI checks.

Everything binds to 127.0.0.0/8 and every process started here is stopped by its PID.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from registry.devcluster.daemons import Containerd
from registry.devcluster.spegel import SpegelNode
from tests.fixtures.cases import write_cases_archive

_counter = itertools.count()


@dataclass
class Pair:
    """A containerd of our own and the spegel-py node in front of it."""

    containerd: Containerd
    spegel: SpegelNode

    @property
    def url(self) -> str:
        return self.spegel.url


PairFactory = Callable[..., Pair]


@pytest.fixture
def make_pair(workdir: Path) -> Iterator[PairFactory]:
    """Start private containerd + node pairs (CASES.md fixtures imported unless ``empty``)."""
    started: list[Pair] = []

    def factory(
        *, empty: bool = False, host: str = "127.0.0.1", start: bool = True, **node_kw: object
    ) -> Pair:
        base = workdir / f"rel{next(_counter)}"
        ctrd = Containerd(base / "c").start()
        pair = Pair(ctrd, SpegelNode(base / "s", ctrd, host=host, **node_kw))  # type: ignore[arg-type]
        started.append(pair)
        if not empty:
            ctrd.ctr(
                "images",
                "import",
                "--all-platforms",
                "--no-unpack",
                str(write_cases_archive(base / "cases.tar")),
            )
        if start:
            pair.spegel.start()
        return pair

    yield factory
    for pair in reversed(started):
        pair.spegel.stop()
        pair.containerd.cleanup()


def status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class PeakRss:
    """Polls a process's resident memory in a thread (bounded by ``limit`` seconds)."""

    def __init__(self, pid: int, every: float = 0.02, limit: float = 300.0) -> None:
        self.pid = pid
        self.every = every
        self.limit = limit
        self.peak_kib = 0
        self.hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.hwm_kib = status_kib(self.pid, "VmHWM")


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> float | None:
    """Seconds until ``check()`` held, or None when it never did within ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(every)
    return None


def assert_oci_error(status: int, content_type: str, body: bytes, method: str = "GET") -> None:
    """A 4xx/5xx answer carries the OCI JSON error body (no body on HEAD), never a traceback."""
    assert status >= 400, status
    assert b"Traceback" not in body and b'File "' not in body, body[:300]
    if method == "HEAD":
        assert body == b""
        return
    assert content_type.split(";")[0].strip() == "application/json", (status, content_type, body)
    errors = json.loads(body)["errors"]
    assert errors and all(
        isinstance(e.get("code"), str) and e["code"] and isinstance(e.get("message"), str)
        for e in errors
    ), body
