"""Which references this node mirrors: registry allow-list, registry filters, tag policy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from registry.distribution import Reference, normalize_ns

WILDCARDS = {"*", "_default"}


def registry_host(url: str) -> str:
    """``https://docker.io`` -> ``docker.io``; ``http://foo:5000`` -> ``foo:5000``."""
    return normalize_ns(urlsplit(url).netloc if "://" in url else url)


@dataclass
class ReferenceFilter:
    mirrored: set[str] = field(default_factory=set)  # empty = every registry
    patterns: list[re.Pattern[str]] = field(default_factory=list)
    resolve_tags: bool = True
    resolve_latest: bool = True

    @classmethod
    def build(
        cls,
        mirrored_registries: list[str],
        registry_filters: list[str],
        resolve_tags: bool = True,
        resolve_latest: bool = True,
    ) -> ReferenceFilter:
        hosts = {registry_host(u) for u in mirrored_registries if u not in WILDCARDS}
        if any(u in WILDCARDS for u in mirrored_registries):
            hosts = set()
        return cls(hosts, [re.compile(p) for p in registry_filters], resolve_tags, resolve_latest)

    def registry_allowed(self, registry: str) -> bool:
        return not self.mirrored or registry in self.mirrored

    def reason_blocked(self, ref: Reference) -> str | None:
        """Why ``ref`` must not be served or mirrored, or None when it may be."""
        # A digest without ns is globally unique: the allow-list does not apply (C08).
        if ref.registry and not self.registry_allowed(ref.registry):
            return f"registry {ref.registry} is not mirrored"
        if ref.tag:
            if not self.resolve_tags:
                return "tag resolution is disabled"
            if ref.tag == "latest" and not self.resolve_latest:
                return "resolving the latest tag is disabled"
        subject = f"{ref.registry}/{ref.name}" + (f":{ref.tag}" if ref.tag else "")
        for pattern in self.patterns:
            if pattern.search(subject):
                return f"{subject} matches registry filter {pattern.pattern}"
        return None

    def image_allowed(self, image_name: str) -> bool:
        """For advertising: may this image name (``registry/repo:tag``) be shared?"""
        registry = normalize_ns(image_name.partition("/")[0])
        if not self.registry_allowed(registry):
            return False
        return not any(p.search(image_name) for p in self.patterns)
