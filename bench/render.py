"""Render BENCHMARK.md from the results of one run (``bench/results/*.json``)."""

from __future__ import annotations

from typing import Any

SERVER_NAMES = {
    "spegel": "spegel-py (node B, own store)",
    "docker_registry": "docker-registry 2.8 (Debian, filesystem)",
    "http_server": "`python -m http.server`",
    "sendfile": "`sendfile(2)` server (bench/sendfile_server.py)",
}


def gbs(rate: float) -> str:
    return f"{rate / 1e9:.2f}"


def x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def mib(n: float) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _err(section: dict[str, Any] | None) -> str | None:
    if section is None:
        return "not run"
    if "error" in section:
        return f"failed: `{section['error']}`"
    return None


def machine(m: dict[str, str]) -> list[str]:
    rows = ["| item | value |", "| --- | --- |"]
    rows += [f"| {k} | {v} |" for k, v in m.items()]
    return rows


def local(r: dict[str, Any]) -> list[str]:
    big, small, clients = mib(r["big_blob_bytes"]), mib(r["small_blob_bytes"]), r["clients"]
    out = [
        f"Medians of {r['reps']} runs; throughput in GB/s (10^9 bytes/s), curl to /dev/null, "
        "warm page cache, loopback. Servers are measured one after another in every run, in a "
        "rotating order; ratios are computed within each run, then the median is taken.",
        "",
        f"| server | 1 client, {big} | {clients} clients x {small} (aggregate) |",
        "| --- | --- | --- |",
    ]
    for server, name in SERVER_NAMES.items():
        rates = r["median_rates"][server]
        out.append(f"| {name} | {gbs(rates['one_client'])} | {gbs(rates['concurrent'])} |")
    out += ["", "| spegel-py / baseline | 1 client | concurrent | target | verdict |"]
    out.append("| --- | --- | --- | --- | --- |")
    targets = {"docker_registry": 1.0, "http_server": 0.8, "sendfile": 0.8}
    for base, target in targets.items():
        one = r["median_ratios"]["one_client"][base]
        many = r["median_ratios"]["concurrent"][base]
        ok = one >= target and many >= target
        out.append(
            f"| vs {SERVER_NAMES[base]} | {x(one)} | {x(many)} | >= {target}x | {verdict(ok)} |"
        )
    runs = "; ".join(
        f"run {i + 1}: " + ", ".join(f"{b} {x(v)}" for b, v in run["ratios"]["one_client"].items())
        for i, run in enumerate(r["runs"])
    )
    out += ["", f"Per-run 1-client ratios (noise): {runs}."]
    out.append(
        f"Peak RSS of node B (registry process + routing process) during this load: "
        f"{mib(r['rss_peak_node_b'])}."
    )
    return out


def mirror(r: dict[str, Any]) -> list[str]:
    med, ratios = r["median_rates"], r["median_ratios"]
    fails, total = r.get("concurrent_failures", {}), r.get("concurrent_requests", 0)
    out = [
        f"Client -> node A (no local copy) -> peer B, against the same client fetching from B "
        f"directly with `X-Spegel-Mirrored: true`. Medians of {r['reps']} runs, GB/s.",
        "",
        f"| path | 1 client, {mib(r['big_blob_bytes'])} | {r['clients']} clients x "
        f"{mib(r['small_blob_bytes'])} |",
        "| --- | --- | --- |",
        f"| via node A (mirror) | {gbs(med['mirror']['one_client'])} | "
        f"{gbs(med['mirror']['concurrent'])} |",
        f"| from B directly | {gbs(med['direct']['one_client'])} | "
        f"{gbs(med['direct']['concurrent'])} |",
        f"| **ratio** (target >= {r['target']}x) | {x(ratios['one_client'])} "
        f"({verdict(ratios['one_client'] >= r['target'])}) | {x(ratios['concurrent'])} "
        f"({verdict(ratios['concurrent'] >= r['target'])}) |",
        "",
        f"Concurrent requests answered 404 instead of the blob: via A {fails.get('mirror', 0)} "
        f"of {total}, directly {fails.get('direct', 0)} of {total} (the concurrent rate counts "
        "only bytes that arrived).",
    ]
    peaks = ", ".join(f"{k} {mib(v)}" for k, v in r.get("rss_peak", {}).items())
    out.append(f"Peak RSS (registry + routing process) during this load: {peaks}.")
    return out


def latency(r: dict[str, Any]) -> list[str]:
    out = [
        f"{r['requests']} sequential HEADs on one keep-alive connection per case (after 20 "
        f"warm-up requests). Nodes run the product default `--mirror-resolve-timeout="
        f"{r['resolve_timeout_ms']:.0f}ms`.",
        "",
        "| request | p50 ms | p90 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {
        "local": "manifest HEAD by tag, served locally (node B)",
        "via_peer": "manifest HEAD by tag via a peer (node A -> B)",
        "miss_404": "manifest HEAD nobody has (404 on node A)",
    }
    for key, name in names.items():
        s = r[key]
        out.append(
            f"| {name} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{s['max_ms']:.2f} |"
        )
    ok = r["miss_404"]["p99_ms"] <= r["miss_budget_ms"]
    out += [
        "",
        f"Miss p99 {r['miss_404']['p99_ms']:.2f} ms against a budget of resolve timeout + 5 ms "
        f"= {r['miss_budget_ms']:.0f} ms: {verdict(ok)}.",
    ]
    return out


def routing(r: dict[str, Any], idle: dict[str, Any] | None, loads: list[int]) -> list[str]:
    t = r["targets"]
    out = [
        "Standalone routing daemons (`python -m routing.daemon`, static bootstrap) on "
        "127.0.x.y. One node advertises the keys; 'advertised' is the time until every other "
        "node's `stats` counts every record from it. Resolve = time to the first peer for a "
        "random advertised key, asked from the other nodes in turn.",
        "",
        "| nodes | keys | advertised everywhere in | all records on all nodes | resolve p50 ms | "
        "resolve p99 ms | idle CPU per daemon (median / max) | RSS per daemon (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in r["sizes"]:
        out.append(
            f"| {s['nodes']} | {s['keys']:,} | {s['advertise_seconds']:.1f} s | "
            f"{'yes' if s['all_records_everywhere'] else 'NO'} ({s['records_held_min']:,} min) | "
            f"{s['resolve_p50_ms']:.2f} | {s['resolve_p99_ms']:.2f} | "
            f"{s['idle_cpu_percent_median']:.2f} % / {s['idle_cpu_percent_max']:.2f} % | "
            f"{mib(s['rss_max_bytes'])} |"
        )
    out += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
    for s in r["sizes"]:
        n = s["nodes"]
        fast = (
            s["resolve_p50_ms"] <= t["resolve_p50_ms"]
            and s["resolve_p99_ms"] <= t["resolve_p99_ms"]
        )
        out.append(
            f"| resolve p50 <= {t['resolve_p50_ms']} ms, p99 <= {t['resolve_p99_ms']} ms "
            f"({n} nodes) | {s['resolve_p50_ms']:.2f} / {s['resolve_p99_ms']:.2f} ms | "
            f"{verdict(fast)} |"
        )
        per10k = s["advertise_seconds"] * 10_000 / s["keys"]
        label = "10,000 keys" if s["keys"] == 10_000 else f"{s['keys']:,} keys (10,000 not run)"
        out.append(
            f"| advertise 10,000 keys <= {t['advertise_10k_seconds']} s ({n} nodes) | "
            f"{label}: {s['advertise_seconds']:.1f} s (linear estimate for 10k: {per10k:.0f} s) | "
            f"{verdict(per10k <= t['advertise_10k_seconds'] and s['all_records_everywhere'])} |"
        )
        out.append(
            f"| idle CPU <= {t['idle_cpu_percent']} % per daemon ({n} nodes) | "
            f"max {s['idle_cpu_percent_max']:.2f} % | "
            f"{verdict(s['idle_cpu_percent_max'] <= t['idle_cpu_percent'])} |"
        )
    if idle:
        for name, v in idle.items():
            if not isinstance(v, dict):
                continue
            out.append(
                f"| idle CPU <= 1 % for a whole node (registry + routing, node {name.upper()}) | "
                f"{v['cpu_percent']:.2f} % | {verdict(v['cpu_percent'] <= 1.0)} |"
            )
    if loads:
        worst = max(loads)
        out.append(
            f"| RSS <= 256 MiB per node under load (registry + routing process, cases 1-2) | "
            f"peak {mib(worst)} | {verdict(worst <= t['rss_bytes'])} |"
        )
    return out


def e2e(r: dict[str, Any]) -> list[str]:
    link = r["link"]
    out = [
        f"Upstream link: {link['rate']} (tc tbf, both directions) and {link['rtt_delay_ms']:.0f}"
        " ms added round trip (delay proxy; this kernel has no netem). Peers on unshaped "
        "veth/bridge links. Times are CRI `PullImage` calls (what the kubelet does), including "
        "unpacking. Baseline: node C (containerd without Spegel) pulls from upstream. Spegel: "
        "node B pulls through its own spegel-py, which finds node A through the DHT. Every "
        "repetition pulls a different image; medians.",
        "",
        "| image | reps | upstream (no Spegel) | via Spegel | faster | speed-up | reference "
        "(Go Spegel, AKS) | upstream blob GETs during P2P pulls |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, s in r["images"].items():
        ref = s.get("reference_faster_percent")
        out.append(
            f"| {label} ({s['layers']} layer{'s' if s['layers'] > 1 else ''}) | {s['reps']} | "
            f"{s['upstream_median_s']:.2f} s | {s['p2p_median_s']:.2f} s | "
            f"{s['faster_percent']:.1f} % | {s['speedup_x']:.1f}x | "
            f"{f'{ref:.2f} % faster' if ref is not None else '-'} | "
            f"{s['upstream_blob_gets_during_p2p']} |"
        )
    return out


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "# spegel-py benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python -m bench.run`) from the JSON in "
        "`bench/results/`; every number below was measured in the same run"
        + (" (**quick smoke sizes, not a real run**)" if res.get("quick") else "")
        + f". Total run time {res.get('total_seconds', 0):.0f} s.",
        "",
        "## Machine",
        "",
        *machine(m),
        "",
        "Other test suites may share this machine while the bench runs (load average at start "
        f"{m.get('load_average_at_start')}): compare ratios within one run, not absolute figures "
        "across runs.",
        "",
    ]
    sections: list[tuple[str, str, Any]] = [
        ("1. Blob GET served locally", "local", local),
        ("2. Mirror path (client -> node A -> peer B)", "mirror", mirror),
        ("3. Latency", "latency", latency),
    ]
    for title, key, fn in sections:
        lines += [f"## {title}", ""]
        err = _err(res.get(key))
        lines += [err] if err else fn(res[key])
        lines.append("")
    lines += ["## 4. Routing", ""]
    err = _err(res.get("routing"))
    if err:
        lines.append(err)
    else:
        loads: list[int] = []
        if "local" in res and "rss_peak_node_b" in res["local"]:
            loads.append(res["local"]["rss_peak_node_b"])
        if "mirror" in res and "rss_peak" in res["mirror"]:
            loads += list(res["mirror"]["rss_peak"].values())
        idle = res.get("node_idle") if not _err(res.get("node_idle")) else None
        lines += routing(res["routing"], idle, loads)
    lines += ["", "## 5. End to end: image pulls through containerd's CRI", ""]
    err = _err(res.get("e2e"))
    lines += [err] if err else e2e(res["e2e"])
    lines += ["", *NOTES, "", "## Commands", "", *COMMANDS]
    return "\n".join(lines) + "\n"


NOTES = [
    "## Notes on method",
    "",
    "- `python -m http.server` does **not** use sendfile: its `copyfile` is "
    "`shutil.copyfileobj` (64 KiB read/write in Python). The true zero-copy baseline is "
    "`bench/sendfile_server.py` (the same handler with `socket.sendfile`). Both are reported.",
    "- containerd 1.6 emits no content-create event for `ctr content ingest`, so the blobs "
    "of cases 1-2 go into node B as the layers of an image imported with `--no-unpack`; B "
    "advertises them like any image layer.",
    "- Case 5 shapes the upstream link with `tc tbf` (netem is not compiled into this kernel: "
    "`CONFIG_NET_SCH_NETEM` is off) and adds the round-trip delay with a TCP proxy in the "
    "upstream's namespace (10 ms each way). TCP itself sees a short RTT, so slow start is "
    "milder than on a real 20 ms path; the bandwidth cap is the kernel's.",
    "- Case 5 runs in network namespaces the bench creates (10.200.0.0/24 exists only there). "
    "Every process that talks to those addresses runs inside a namespace (`ip netns exec`): "
    "containerd, spegel-py, the upstream registry, the push, readiness probes. The root "
    "namespace only uses unix sockets (containerd's gRPC) and files. Namespaces are deleted "
    "at the end, also on failure.",
    "- The reference numbers are the Go Spegel's published benchmark (50 AKS nodes, real "
    "registry, v0.0.23). Here one machine with 2 cores plays every role, so the comparison "
    "is of the shape, not of absolute times.",
]

COMMANDS = [
    "```sh",
    "make bench                                  # = .venv/bin/python -m bench.run",
    ".venv/bin/python -m bench.run --quick       # every case at tiny sizes (smoke test)",
    ".venv/bin/python -m bench.run --cases local mirror   # a subset",
    "# what the cases run, per request:",
    "curl -sS --fail -o /dev/null -w '%{size_download}' http://127.0.5.12:PORT/v2/bench/blob/blobs/sha256:...",
    "curl ... -H 'X-Spegel-Mirrored: true' http://127.0.5.12:PORT/v2/...   # case 2 baseline",
    "ip netns exec spbNNN-c ...   # case 5: everything touching 10.200.0.x runs in a namespace",
    "```",
]
