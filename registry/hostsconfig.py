"""What containerd's ``hosts.toml`` files must say: URL validation and the file contents.

Pure functions only; :mod:`registry.hostsdir` puts the result on disk. A registry is mirrored by
a ``<host[:port]>/hosts.toml`` that names the upstream as ``server`` and lists our mirror
targets as ``[host."<url>"]`` tables, which containerd tries in file order before falling back
to ``server``. ``_default/hosts.toml`` (no ``server``) applies to every registry without its own
directory.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from registry.tomlwrite import dumps

DEFAULT_DIR = "_default"
WILDCARDS = ("*", DEFAULT_DIR)
DIAL_TIMEOUT = "200ms"
# containerd's DefaultHost: the docker.io namespace is served by another API host.
SERVER_ALIASES = {"https://docker.io": "https://registry-1.docker.io"}


class HostsConfigError(ValueError):
    """Bad input for the hosts configuration; nothing has been written."""


@dataclass(frozen=True)
class RegistryURL:
    scheme: str
    netloc: str  # host[:port], IPv6 hosts bracketed

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


@dataclass(frozen=True)
class HostsFile:
    """One ``<directory>/hosts.toml`` to write, plus sibling files to copy from the backup."""

    directory: str
    document: dict[str, Any]
    siblings: tuple[str, ...] = ()

    def render(self) -> bytes:
        return dumps(self.document).encode()


def parse_url(raw: str, what: str) -> RegistryURL:
    """Validate ``scheme://host[:port]``; ``what`` names the list in error messages."""
    entry = raw.strip()
    parts = urlsplit(entry)
    scheme = parts.scheme.lower()
    if not scheme or "://" not in entry:
        raise HostsConfigError(f"{what} entry {raw!r} has no scheme; write http://… or https://…")
    if scheme not in ("http", "https"):
        raise HostsConfigError(f"{what} entry {raw!r}: scheme must be http or https, not {scheme}")
    if "@" in parts.netloc:
        raise HostsConfigError(f"{what} entry {raw!r} must not contain user info (user:pass@)")
    if parts.path:
        raise HostsConfigError(
            f"{what} entry {raw!r} has a path {parts.path!r}; give only scheme://host[:port]"
        )
    if parts.query or entry.endswith("?"):
        raise HostsConfigError(f"{what} entry {raw!r} must not have a query")
    if parts.fragment or entry.endswith("#"):
        raise HostsConfigError(f"{what} entry {raw!r} must not have a fragment")
    return RegistryURL(scheme, _netloc(parts.netloc.lower(), raw, what))


def _netloc(netloc: str, raw: str, what: str) -> str:
    if not netloc:
        raise HostsConfigError(f"{what} entry {raw!r} has no host")
    if netloc.count(":") > 1 and not netloc.startswith("["):
        # An unbracketed IPv6 address, e.g. http://$(NODE_IP):30020 with an IPv6 node IP.
        if _is_ipv6(netloc):
            return f"[{netloc}]"
        host, _, port = netloc.rpartition(":")
        if not _is_ipv6(host):
            raise HostsConfigError(f"{what} entry {raw!r} has an invalid host {netloc!r}")
        netloc = f"[{host}]:{port}"
    try:
        parsed = urlsplit(f"//{netloc}")
        port = parsed.port
        host = parsed.hostname
    except ValueError as err:
        raise HostsConfigError(f"{what} entry {raw!r}: {err}") from err
    if not host:
        raise HostsConfigError(f"{what} entry {raw!r} has no host")
    if host.startswith("_"):
        # _default and _backup are directory names with a meaning of their own.
        raise HostsConfigError(f"{what} entry {raw!r}: host must not start with '_'")
    if port == 0:
        raise HostsConfigError(f"{what} entry {raw!r} has port 0")
    return netloc


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_mirrored(entries: Sequence[str]) -> tuple[bool, list[RegistryURL]]:
    """Return (wildcard, explicit registries). Empty means every registry."""
    wildcards = [e for e in entries if e.strip() in WILDCARDS]
    if len(wildcards) > 1:
        raise HostsConfigError(
            f"mirrored registries list the wildcard more than once ({', '.join(wildcards)}); "
            "give one of '*' or '_default'"
        )
    registries = [
        parse_url(e, "mirrored registries") for e in entries if e.strip() not in WILDCARDS
    ]
    _no_duplicates([r.netloc for r in registries], "mirrored registries")
    return (not entries or bool(wildcards)), registries


def parse_targets(entries: Sequence[str]) -> list[RegistryURL]:
    if not entries:
        raise HostsConfigError(
            "mirror targets are required (e.g. http://$(NODE_IP):30020); containerd rejects a "
            "hosts.toml without [host] tables"
        )
    targets = [parse_url(e, "mirror targets") for e in entries]
    _no_duplicates([t.url for t in targets], "mirror targets")
    return targets


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise HostsConfigError(f"{what} list {value!r} twice")
        seen.add(value)


def mirror_hosts(
    targets: Sequence[RegistryURL], resolve_tags: bool, authorization: str = ""
) -> dict[str, Any]:
    capabilities = ["pull", "resolve"] if resolve_tags else ["pull"]
    hosts: dict[str, Any] = {}
    for t in targets:
        table: dict[str, Any] = {"capabilities": list(capabilities), "dial_timeout": DIAL_TIMEOUT}
        if authorization:
            # containerd sends these headers to the mirror (registry basic auth).
            table["header"] = {"Authorization": authorization}
        hosts[t.url] = table
    return hosts


def hosts_document(
    registry: RegistryURL | None,
    targets: Sequence[RegistryURL],
    resolve_tags: bool,
    existing: Mapping[str, Any] | None = None,
    authorization: str = "",
) -> dict[str, Any]:
    """The hosts.toml for one registry (``None`` = ``_default``): our hosts first, in order.

    With ``existing`` (the operator's file), its ``server`` and other top-level keys are kept
    and its host tables follow ours with every key; a host we also list keeps our settings.
    """
    document: dict[str, Any] = {}
    if registry is not None:
        document["server"] = SERVER_ALIASES.get(registry.url, registry.url)
    hosts = mirror_hosts(targets, resolve_tags, authorization)
    if existing is not None:
        for key, value in existing.items():
            if key != "host":
                document[key] = value
        for url, table in (existing.get("host") or {}).items():
            hosts.setdefault(url, table)
    document["host"] = hosts
    return document


def load_existing(text: str, source: str) -> dict[str, Any]:
    """Parse an operator's hosts.toml; errors name the file."""
    try:
        existing = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise HostsConfigError(f"cannot parse existing {source}: {err}") from err
    hosts = existing.get("host", {})
    if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
        raise HostsConfigError(f"existing {source}: 'host' must be a table of tables")
    return existing
