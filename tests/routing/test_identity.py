import stat
from pathlib import Path

from libp2p.peer.id import ID

from routing.identity import KEY_FILE, load_key_pair, load_or_create_seed


def test_identity_persisted_with_mode_0600(tmp_path: Path) -> None:
    first = ID.from_pubkey(load_key_pair(tmp_path).public_key)
    path = tmp_path / KEY_FILE
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = ID.from_pubkey(load_key_pair(tmp_path).public_key)
    assert first == second
    assert str(first).startswith("12D3KooW")


def test_identity_random_without_data_dir() -> None:
    assert load_or_create_seed("") != load_or_create_seed("")
    assert len(load_or_create_seed(None)) == 32


def test_identity_creates_missing_data_dir(tmp_path: Path) -> None:
    load_or_create_seed(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b" / KEY_FILE).exists()
