"""Put the hosts configuration on disk, keep the operator's original once, and undo it.

Layout of ``<path>`` after :func:`configure`:

* ``_backup/`` holds the original tree, moved there once, byte for byte. It is created even
  when the original tree was empty, so :func:`cleanup` always knows what to restore and a
  missing ``_backup/`` means there is nothing of ours to undo.
* Every original entry that is not a mirrored registry directory is copied back unchanged
  (other registries keep their TLS and auth settings).
* Each mirrored registry gets a generated ``<host[:port]>/hosts.toml``; with prepend-existing,
  the sibling files of the original directory (client certificates, CAs) are copied beside it.

Each run rebuilds the tree from ``_backup/`` and the flags, so re-runs are idempotent and a
registry dropped from the flags gets its original directory back.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.hostsconfig import (
    DEFAULT_DIR,
    HostsConfigError,
    HostsFile,
    RegistryURL,
    hosts_document,
    load_existing,
    parse_mirrored,
    parse_targets,
)

logger = logging.getLogger(__name__)

BACKUP_DIR = "_backup"
_PARTIAL = "_backup.partial"  # a backup interrupted half-way is finished on the next run
HOSTS_FILE = "hosts.toml"


@dataclass(frozen=True)
class Settings:
    config_path: Path
    mirrored_registries: Sequence[str]
    mirror_targets: Sequence[str]
    resolve_tags: bool = True
    prepend_existing: bool = False
    authorization: str = ""  # e.g. "Basic dXNlcjpwYXNz" when the registry needs basic auth


def plan(settings: Settings) -> list[HostsFile]:
    """Validate everything and compute the files; raises :class:`HostsConfigError`."""
    wildcard, registries = parse_mirrored(settings.mirrored_registries)
    targets = parse_targets(settings.mirror_targets)
    entries: list[tuple[str, RegistryURL | None]] = [(r.netloc, r) for r in registries]
    if wildcard:
        entries.insert(0, (DEFAULT_DIR, None))
    files = []
    for directory, registry in entries:
        existing: dict[str, Any] | None = None
        siblings: tuple[str, ...] = ()
        source = _original(settings.config_path, directory)
        if settings.prepend_existing and source is not None and source.is_dir():
            hosts = source / HOSTS_FILE
            if hosts.is_file():
                existing = load_existing(hosts.read_text(), str(hosts))
            siblings = tuple(sorted(p.name for p in source.iterdir() if p.name != HOSTS_FILE))
        document = hosts_document(
            registry, targets, settings.resolve_tags, existing, settings.authorization
        )
        files.append(HostsFile(directory, document, siblings))
    return files


def _original(path: Path, name: str) -> Path | None:
    """Where the operator's original entry ``name`` is now: backed up, or still in place."""
    if (path / BACKUP_DIR).is_dir():
        candidate = path / BACKUP_DIR / name
        return candidate if candidate.exists() else None
    for candidate in (path / _PARTIAL / name, path / name):
        if candidate.exists():
            return candidate
    return None


def configure(settings: Settings) -> list[HostsFile]:
    """Validate, back up once, then rebuild the tree. Nothing is touched on a bad input."""
    files = plan(settings)
    path = settings.config_path
    path.mkdir(parents=True, exist_ok=True)
    backup = ensure_backup(path)
    ours = {f.directory for f in files}
    for entry in _entries(path):
        _remove(entry)
    for original in _entries(backup):
        if original.name not in ours:
            _copy(original, path / original.name)
    for hosts in files:
        target = path / hosts.directory
        target.mkdir()
        for name in hosts.siblings:
            _copy(backup / hosts.directory / name, target / name)
        _write_atomic(target / HOSTS_FILE, hosts.render())
        logger.info("wrote hosts.toml", extra={"path": str(target / HOSTS_FILE)})
    return files


def ensure_backup(path: Path) -> Path:
    """Move the original entries into ``_backup/`` unless a backup already exists."""
    backup = path / BACKUP_DIR
    if backup.is_dir():
        return backup
    partial = path / _PARTIAL
    partial.mkdir(exist_ok=True)
    moved = 0
    for entry in _entries(path):
        os.rename(entry, partial / entry.name)
        moved += 1
    os.rename(partial, backup)
    logger.info(
        "backed up original hosts configuration", extra={"path": str(backup), "entries": moved}
    )
    return backup


def cleanup(path: Path) -> bool:
    """Restore the original tree from ``_backup/`` and remove it; False if there is none."""
    backup = path / BACKUP_DIR
    if not backup.is_dir():
        # Interrupted first backup: nothing was generated yet, just move the originals back.
        backup = path / _PARTIAL
        if not backup.is_dir():
            logger.info("no backup to restore", extra={"path": str(path)})
            return False
    else:
        for entry in _entries(path):
            _remove(entry)
    for original in list(backup.iterdir()):
        os.rename(original, path / original.name)
    backup.rmdir()
    logger.info("restored original hosts configuration", extra={"path": str(path)})
    return True


def _entries(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.name not in (BACKUP_DIR, _PARTIAL))


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _copy(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target, follow_symlinks=False)


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


__all__ = ["BACKUP_DIR", "HostsConfigError", "Settings", "cleanup", "configure", "plan"]
