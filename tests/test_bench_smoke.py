"""The benchmark code works: every case of ``python -m bench.run`` at tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.mark.skipif(os.geteuid() != 0, reason="case 5 creates network namespaces (root)")
def test_bench_quick_runs_every_case(tmp_path: Path) -> None:
    results, markdown = tmp_path / "results", tmp_path / "BENCHMARK.md"
    cmd = [sys.executable, "-m", "bench.run", "--quick", "--results", str(results)]
    proc = subprocess.Popen(
        [*cmd, "--markdown", str(markdown)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=170)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    run = json.loads((results / "run.json").read_text())
    for case in ("local", "mirror", "latency", "routing", "e2e"):
        assert "error" not in run[case], run[case]
    assert run["e2e"]["images"]["1MB-1"]["upstream_blob_gets_during_p2p"] == 0
    text = markdown.read_text()
    for heading in (
        "## 1. Blob GET",
        "## 2. Mirror path",
        "## 3. Latency",
        "## 4. Routing",
        "## 5. End to end",
        "## Machine",
    ):
        assert heading in text
    # Nothing the bench created is left behind.
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"spb{proc.pid % 100000}-" not in leftover
