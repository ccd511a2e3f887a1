"""Small helpers for the hosts configuration tests: run the command, read trees and TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from django.core.management import call_command

MUT = "http://127.0.0.1:30020"
MUT2 = "http://127.0.0.1:30021"
PULL_RESOLVE = {"capabilities": ["pull", "resolve"], "dial_timeout": "200ms"}


def configure(path: Path, *args: str, **options: Any) -> None:
    call_command("configuration", f"--containerd-registry-config-path={path}", *args, **options)


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path``: file bytes, or None for a directory (empty ones too)."""
    out: dict[str, bytes | None] = {}
    for entry in sorted(path.rglob("*")):
        rel = str(entry.relative_to(path))
        out[rel] = None if entry.is_dir() else entry.read_bytes()
    return out


def load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def host_order(document: dict[str, Any]) -> list[str]:
    """tomllib keeps file order in dicts, so this is the order containerd tries the hosts."""
    return list(document.get("host", {}))


def written(path: Path) -> list[str]:
    """Generated hosts.toml files (everything outside ``_backup``)."""
    return sorted(
        str(p.relative_to(path))
        for p in path.rglob("hosts.toml")
        if p.relative_to(path).parts[0] != "_backup"
    )
