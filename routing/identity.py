"""The node's Ed25519 identity, persisted as PKCS8 PEM ``private.key`` under ``--data-dir``.

The Go Spegel stores the same file (PEM, PKCS8), so a node keeps its peer id across restarts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair

KEY_FILE = "private.key"
log = logging.getLogger(__name__)


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def load_or_create_seed(data_dir: str | os.PathLike[str] | None) -> bytes:
    """Return the 32-byte Ed25519 seed: read from ``data_dir/private.key`` or created there.

    Without ``data_dir`` a fresh random identity is returned and nothing is written.
    """
    if not data_dir:
        return _seed(Ed25519PrivateKey.generate())
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return _seed(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write then rename, so a crash never leaves a half-written identity behind.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)
    log.info("created peer identity", extra={"path": str(path)})
    return _seed(key)


def load_key_pair(data_dir: str | os.PathLike[str] | None) -> KeyPair:
    return create_new_key_pair(load_or_create_seed(data_dir))
