"""Network namespaces for the end-to-end case, created and removed by the bench itself.

Safety (ENVIRONMENT.md section 5): the 10.200.0.0/24 addresses exist only inside namespaces
created here, and every process that sends to one runs inside a namespace (``ip netns exec``).
Nothing in the root namespace ever addresses them: the bridge lives in its own namespace,
veth pairs are created inside namespaces (never in the root one), and every command run
"in" a namespace first checks that the namespace exists.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

SUBNET = "10.200.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _tc(ns: str, *args: str) -> None:
    subprocess.run(["tc", "-n", ns, *args], check=True, capture_output=True, timeout=30)


@dataclass
class Lab:
    """A bridge namespace plus one namespace per member, each with one address on the bridge."""

    prefix: str = field(default_factory=lambda: f"spb{os.getpid() % 100000}")
    members: dict[str, str] = field(default_factory=dict)  # name -> address
    created: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def bridge_ns(self) -> str:
        return self.ns("br")

    def exists(self, name: str) -> bool:
        return os.path.exists(f"/run/netns/{self.ns(name)}")

    def create(self, members: dict[str, int]) -> Lab:
        """``members``: name -> last octet of its 10.200.0.x address."""
        self._add(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for index, (name, octet) in enumerate(members.items()):
            ns = self.ns(name)
            self._add(ns)
            veth = f"v{index}"
            # Created inside the bridge namespace; the peer end goes straight into the member.
            _ip(
                "-n",
                self.bridge_ns,
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            _ip("-n", self.bridge_ns, "link", "set", veth, "master", "br0")
            _ip("-n", self.bridge_ns, "link", "set", veth, "up")
            address = f"{SUBNET}.{octet}"
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            self.members[name] = address
        return self

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.created.append(ns)

    def shape(self, name: str, rate: str) -> None:
        """Token bucket (tbf) on the member's egress and on the bridge port towards it."""
        index = list(self.members).index(name)
        tbf = ["root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"]
        _tc(self.ns(name), "qdisc", "add", "dev", "eth0", *tbf)
        _tc(self.bridge_ns, "qdisc", "add", "dev", f"v{index}", *tbf)

    def prefix_cmd(self, name: str) -> list[str]:
        """``ip netns exec NS``, after checking that NS exists (never fall back to root)."""
        if not self.exists(name):
            raise RuntimeError(f"namespace {self.ns(name)} does not exist: refusing to run")
        return ["ip", "netns", "exec", self.ns(name)]

    def run(self, name: str, cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix_cmd(name), *cmd], text=True, **kw)  # type: ignore[call-overload]

    def http_status(self, name: str, url: str, method: str = "GET") -> int:
        """Status of ``url`` asked from inside namespace ``name`` (0 when unreachable)."""
        verb = ["-I"] if method == "HEAD" else []
        result = self.run(
            name,
            ["curl", "-s", "-o", "/dev/null", "-m", "5", *verb, "-w", "%{http_code}", url],
            capture_output=True,
            timeout=15,
        )
        with contextlib.suppress(ValueError):
            return int(result.stdout.strip() or 0)
        return 0

    def pids(self) -> list[int]:
        out: list[int] = []
        for ns in self.created:
            result = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            out += [int(p) for p in result.stdout.split()]
        return out

    def delete(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.created = [ns for ns in self.created if os.path.exists(f"/run/netns/{ns}")]
