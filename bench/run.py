"""``python -m bench.run``: every case with its baseline, results as JSON, BENCHMARK.md.

Full run (``make bench``) sizes are in ``FULL``; ``--quick`` runs every case at tiny sizes
(the smoke test). Everything started is stopped by its PID and every namespace, veth and
temporary directory is removed, also when a case fails or the run is interrupted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import case_e2e, case_latency, case_local, case_mirror, case_routing, render
from bench.common import GiB, MiB, random_file, sha256_file, write_json
from bench.loopback import Blob, LoopbackSetup
from bench.machine import describe
from registry.devcluster.images import ImageBuilder

ROOT = Path(__file__).resolve().parents[1]
CASES = ("local", "mirror", "latency", "routing", "e2e")


@dataclass
class Plan:
    big: int
    small: int
    clients: int
    reps: int
    latency_requests: int
    routing: list[tuple[int, int]]
    resolves: int
    idle_seconds: float
    e2e: list[case_e2e.ImageSpec] = field(default_factory=list)


FULL = Plan(
    big=1 * GiB,
    small=64 * MiB,
    clients=16,
    reps=5,
    latency_requests=500,
    routing=[(5, 10_000), (20, 10_000)],
    resolves=200,
    idle_seconds=10.0,
    e2e=[
        case_e2e.spec("10MB-1", 10_000_000, 1, 5),
        case_e2e.spec("100MB-4", 100_000_000, 4, 3),
        case_e2e.spec("1GB-4", 1_000_000_000, 4, 1),
    ],
)

QUICK = Plan(
    big=8 * MiB,
    small=1 * MiB,
    clients=4,
    reps=1,
    latency_requests=30,
    routing=[(3, 50)],
    resolves=20,
    idle_seconds=1.0,
    e2e=[case_e2e.spec("1MB-1", 1_000_000, 1, 1)],
)


def _on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(f"interrupted by signal {signum}")


def _timed(name: str, fn: Callable[[], dict[str, Any]], out: dict[str, Any]) -> None:
    start = time.monotonic()
    print(f"[bench] {name} ...", flush=True)
    try:
        out[name] = fn()
    except Exception as exc:
        traceback.print_exc()
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    out[name]["seconds"] = round(time.monotonic() - start, 1)
    print(f"[bench] {name} done in {out[name]['seconds']} s", flush=True)


def run_loopback_cases(plan: Plan, work: Path, cases: set[str], out: dict[str, Any]) -> None:
    setup = LoopbackSetup(work / "loopback")
    try:
        start = time.monotonic()
        setup.start()
        blobs = []
        for size in (plan.big, plan.small):
            path = random_file(work / f"blob-{size}", size)
            blobs.append(Blob(path, sha256_file(path), size))
        setup.add_blobs(blobs, ImageBuilder(work / "layers"))
        setup.add_image(ImageBuilder(work / "app"))
        big, small = blobs
        setup.wait_mirrorable(f"/v2/bench/blob/blobs/{big.digest}")
        setup.wait_mirrorable(f"/v2/bench/blob/blobs/{small.digest}")
        setup.wait_mirrorable("/v2/bench/app/manifests/v1?ns=127.0.5.1%3A5999")
        out["loopback_setup_seconds"] = round(time.monotonic() - start, 1)
        if "local" in cases:
            _timed("local", lambda: case_local.run(setup, big, small, plan.reps, plan.clients), out)
        if "mirror" in cases:
            _timed(
                "mirror", lambda: case_mirror.run(setup, big, small, plan.reps, plan.clients), out
            )
        if "latency" in cases:
            _timed("latency", lambda: case_latency.run(setup, plan.latency_requests), out)
        if "local" in cases:
            _timed("node_idle", lambda: _node_idle(setup, plan.idle_seconds), out)
    finally:
        setup.stop()


def _node_idle(setup: LoopbackSetup, seconds: float) -> dict[str, Any]:
    from bench.common import idle_cpu_percent, rss_bytes, tree

    time.sleep(1.0)
    out: dict[str, Any] = {}
    for name, node in setup.nodes.items():
        assert node.proc is not None
        pids = tree(node.proc.pid)
        cpu = idle_cpu_percent(pids, seconds)
        out[name] = {
            "processes": len(pids),
            "cpu_percent": round(sum(cpu.values()), 3),
            "rss_bytes": sum(rss_bytes(p) for p in pids),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARK.md")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    cases = set(args.cases)
    signal.signal(signal.SIGTERM, _on_signal)
    work = Path(tempfile.mkdtemp(prefix="spb-", dir="/tmp"))
    results: dict[str, Any] = {
        "machine": describe(),
        "quick": args.quick,
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "plan": {
            "big": plan.big,
            "small": plan.small,
            "clients": plan.clients,
            "reps": plan.reps,
            "latency_requests": plan.latency_requests,
            "routing": plan.routing,
            "resolves": plan.resolves,
            "e2e": [(s.label, s.layer_sizes, s.reps) for s in plan.e2e],
        },
    }
    started = time.monotonic()
    try:
        if cases & {"local", "mirror", "latency"}:
            run_loopback_cases(plan, work, cases, results)
        if "routing" in cases:
            _timed(
                "routing",
                lambda: case_routing.run(plan.routing, plan.resolves, plan.idle_seconds),
                results,
            )
        if "e2e" in cases:
            _timed("e2e", lambda: case_e2e.run(work / "e2e", plan.e2e), results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        results["total_seconds"] = round(time.monotonic() - started, 1)
        for name in (*CASES, "node_idle"):
            if name in results:
                write_json(args.results / f"{name}.json", results[name])
        write_json(args.results / "run.json", results)
        args.markdown.write_text(render.markdown(results))
        print(f"[bench] wrote {args.markdown} in {results['total_seconds']} s", flush=True)
    failed = [n for n in CASES if isinstance(results.get(n), dict) and "error" in results[n]]
    print(json.dumps({"failed_cases": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
