"""One settings object for the whole node, filled from flags and environment variables.

Every flag ``--some-flag`` can also be set by the environment variable ``SOME_FLAG``. The
management commands build their argparse parsers from the tables below, so the Helm chart test
can check the chart's arguments against exactly what the commands accept.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONTENT_PATH = "/var/lib/containerd/io.containerd.content.v1.content"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: str | float) -> float:
    """Parse ``20ms``, ``1.5s``, ``2m`` or a bare number of seconds into seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(f"invalid duration {value!r} (examples: 20ms, 1.5s, 2m)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


_BYTERATE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)Bps\s*$")
_BYTERATE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_byterate(value: str) -> int:
    """Parse ``100MBps`` (binary units, as the reference) into bytes per second; ``""`` is 0."""
    if not value:
        return 0
    match = _BYTERATE_RE.match(value)
    if not match:
        raise ValueError(f"invalid byte rate {value!r} (examples: 500KBps, 100MBps, 1GBps)")
    return int(match.group(1)) * _BYTERATE_UNITS[match.group(2)]


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"invalid boolean {value!r}")


def split_list(value: str | Sequence[str]) -> list[str]:
    """Split a comma or whitespace separated list (env vars) or flatten argparse lists."""
    if isinstance(value, str):
        items = re.split(r"[,\s]+", value)
    else:
        items = []
        for item in value:
            items.extend(re.split(r"[,\s]+", item))
    return [item for item in items if item]


@dataclass(frozen=True)
class Flag:
    """One command-line flag; its environment variable is the upper-snake of its name."""

    name: str
    default: Any
    help: str
    kind: str = "str"  # str | bool | list | int | duration

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return self.dest.upper()

    def convert(self, raw: Any) -> Any:
        converters: dict[str, Callable[[Any], Any]] = {
            "str": str,
            "bool": parse_bool,
            "list": split_list,
            "int": int,
            "duration": parse_duration,
        }
        return converters[self.kind](raw)


COMMON_FLAGS = [
    Flag("log-level", "INFO", "Minimum log level: DEBUG, INFO, WARNING or ERROR."),
]

REGISTRY_FLAGS = [
    *COMMON_FLAGS,
    Flag("registry-addr", ":5000", "Address of the OCI registry port (/v2, /readyz, /livez)."),
    Flag("metrics-addr", ":9090", "Address of the admin port (/metrics, /visualize/, /admin/)."),
    Flag("router-addr", ":5001", "Address the P2P router (libp2p) listens on."),
    Flag("containerd-sock", "/run/containerd/containerd.sock", "containerd gRPC socket."),
    Flag("containerd-namespace", "k8s.io", "containerd namespace holding the images."),
    Flag(
        "containerd-content-path",
        DEFAULT_CONTENT_PATH,
        "containerd content store directory for direct blob reads; empty streams over gRPC.",
    ),
    Flag(
        "containerd-registry-config-path",
        "/etc/containerd/certs.d",
        "Directory containerd reads hosts.toml from; checked against containerd at start.",
    ),
    Flag(
        "verify-containerd-config",
        True,
        "Check containerd's CRI config (config_path, discard_unpacked_layers) at start.",
        "bool",
    ),
    Flag(
        "mirrored-registries",
        [],
        "Registry URLs to mirror; empty, '*' or '_default' mirrors every registry.",
        "list",
    ),
    Flag("registry-filters", [], "Regexes on '<registry>/<repo>[:tag]' never mirrored.", "list"),
    Flag("resolve-latest-tag", True, "Resolve ':latest' tags through peers.", "bool"),
    Flag("resolve-tags", True, "Resolve tags through peers at all.", "bool"),
    Flag(
        "mirror-resolve-timeout",
        "100ms",
        "Deadline for finding peers for one request (the Go reference uses 20ms; the Python "
        "DHT process answers local hits in ~1 ms but can lag under advertise bursts).",
        "duration",
    ),
    Flag("mirror-resolve-retries", 3, "Maximum number of peers tried for one request.", "int"),
    Flag(
        "mirror-manifest-timeout", "3s", "Total budget for a mirrored manifest or HEAD.", "duration"
    ),
    Flag("bootstrap-kind", "", "How to find the first peers: dns, static or http.", "str"),
    Flag("dns-bootstrap-domain", "", "Headless Service name resolved to peer addresses.", "str"),
    Flag("static-bootstrap-peers", [], "Full /p2p/ multiaddrs of bootstrap peers.", "list"),
    Flag("http-bootstrap-addr", "", "Serve our own multiaddr over HTTP on this address.", "str"),
    Flag("http-bootstrap-url", "", "Fetch a peer's multiaddr from this URL.", "str"),
    Flag("data-dir", "", "Directory for state kept across restarts (peer identity).", "str"),
    Flag("blob-speed", "", "Cap on bytes per second served to peers, e.g. 100MBps.", "str"),
    Flag(
        "visualize-enabled", False, "Serve the live graph at /visualize/ on the admin port.", "bool"
    ),
    Flag("visualize-persist", False, "Persist visualize events to SQLite.", "bool"),
    Flag(
        "visualize-db-path", "", "SQLite file for persisted events (default under data dir).", "str"
    ),
    Flag("visualize-retention", "168h", "Drop persisted events older than this.", "duration"),
    Flag("visualize-max-events", 100000, "Keep at most this many persisted events.", "int"),
    Flag("basic-auth-dir", "", "Directory with 'username' and 'password' files.", "str"),
    Flag("shutdown-grace", "30s", "Time in-flight responses get to finish on SIGTERM.", "duration"),
]


CONFIGURATION_FLAGS = [
    *COMMON_FLAGS,
    Flag(
        "containerd-registry-config-path",
        "/etc/containerd/certs.d",
        "Directory containerd reads hosts.toml from (its CRI registry config_path).",
    ),
    Flag(
        "mirrored-registries",
        [],
        "Registry URLs to mirror; empty, '*' or '_default' writes _default/hosts.toml.",
        "list",
    ),
    Flag("mirror-targets", [], "Mirror URLs written as hosts, in this order (required).", "list"),
    Flag("resolve-tags", True, "Let the mirrors resolve tags (capability 'resolve').", "bool"),
    Flag(
        "prepend-existing",
        False,
        "Keep the backed-up hosts.toml's hosts (and certificate files) after ours.",
        "bool",
    ),
    Flag(
        "containerd-config-file",
        "",
        "containerd config.toml to check first (config_path set, no legacy mirrors); empty skips.",
    ),
    Flag(
        "basic-auth-dir",
        "",
        "Directory with 'username' and 'password' files: containerd sends them to the mirrors.",
    ),
]

CLEANUP_FLAGS = [
    *COMMON_FLAGS,
    Flag(
        "containerd-registry-config-path",
        "/etc/containerd/certs.d",
        "Directory containerd reads hosts.toml from; its _backup/ is restored.",
    ),
    Flag("addr", "", "After restoring, serve 200 /readyz here until SIGTERM; empty exits.", "str"),
]


def add_flags(
    parser: argparse.ArgumentParser, flags: Sequence[Flag], env: Mapping[str, str]
) -> None:
    """Add ``flags`` to ``parser``; defaults come from ``env`` when set there.

    An environment value is kept as text and converted by argparse like a command-line value,
    so a bad one is reported by the command as a usage error naming the flag, not a traceback.
    """
    for flag in flags:
        shown = ", ".join(flag.default) if isinstance(flag.default, list) else flag.default
        help_text = f"{flag.help} (default: {shown!r}; env {flag.env})"
        if flag.kind == "list":
            default = split_list(env[flag.env]) if flag.env in env else flag.default
            parser.add_argument(
                f"--{flag.name}", dest=flag.dest, nargs="*", default=default, help=help_text
            )
            continue
        parser.add_argument(
            f"--{flag.name}",
            dest=flag.dest,
            type=_argument_type(flag),
            default=env[flag.env] if flag.env in env else flag.default,
            help=help_text,
        )


def _argument_type(flag: Flag) -> Callable[[str], Any]:
    def convert(raw: str) -> Any:
        try:
            return flag.convert(raw)
        except ValueError as err:
            source = f" (from {flag.env})" if raw == os.environ.get(flag.env) else ""
            raise argparse.ArgumentTypeError(f"{err}{source}") from err

    convert.__name__ = flag.kind
    return convert


def options_from(flags: Sequence[Flag], options: Mapping[str, Any]) -> dict[str, Any]:
    values = {}
    for flag in flags:
        raw = options.get(flag.dest, flag.default)
        if flag.kind == "list":
            values[flag.dest] = split_list(raw or [])
        elif flag.kind == "duration":
            values[flag.dest] = parse_duration(raw)
        else:
            values[flag.dest] = flag.convert(raw) if isinstance(raw, str) else raw
    return values


@dataclass
class SpegelConfig:
    """The node's runtime settings (the ``registry`` command's flags)."""

    log_level: str = "INFO"
    registry_addr: str = ":5000"
    metrics_addr: str = ":9090"
    router_addr: str = ":5001"
    containerd_sock: str = "/run/containerd/containerd.sock"
    containerd_namespace: str = "k8s.io"
    containerd_content_path: str = DEFAULT_CONTENT_PATH
    containerd_registry_config_path: str = "/etc/containerd/certs.d"
    verify_containerd_config: bool = True
    mirrored_registries: list[str] = field(default_factory=list)
    registry_filters: list[str] = field(default_factory=list)
    resolve_latest_tag: bool = True
    resolve_tags: bool = True
    mirror_resolve_timeout: float = 0.1
    mirror_resolve_retries: int = 3
    mirror_manifest_timeout: float = 3.0
    bootstrap_kind: str = ""
    dns_bootstrap_domain: str = ""
    static_bootstrap_peers: list[str] = field(default_factory=list)
    http_bootstrap_addr: str = ""
    http_bootstrap_url: str = ""
    data_dir: str = ""
    blob_speed: str = ""
    visualize_enabled: bool = False
    visualize_persist: bool = False
    visualize_db_path: str = ""
    visualize_retention: float = 168 * 3600.0
    visualize_max_events: int = 100000
    basic_auth_dir: str = ""
    shutdown_grace: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SpegelConfig:
        env = os.environ if env is None else env
        known = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for flag in REGISTRY_FLAGS:
            if flag.dest in known and flag.env in env:
                try:
                    values[flag.dest] = flag.convert(env[flag.env])
                except ValueError:
                    # Reported by the command that parses it; never crash settings import.
                    continue
        return cls(**values)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SpegelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = options_from(REGISTRY_FLAGS, options)
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def registry_port(self) -> int:
        return split_addr(self.registry_addr)[1]


def database_path(config: SpegelConfig) -> str:
    """SQLite file for the admin users and persisted events."""
    import tempfile

    if config.visualize_db_path:
        return config.visualize_db_path
    base = config.data_dir or os.path.join(tempfile.gettempdir(), "spegel-py")
    return os.path.join(base, "spegel.sqlite3")


def split_addr(addr: str) -> tuple[str, int]:
    """Split ``host:port``, ``:port`` or ``[v6]:port``; an empty host means all interfaces."""
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"invalid address {addr!r}: expected host:port")
    host = host.strip("[]")
    return host, int(port)
