"""C24: an operator's existing hosts configuration is backed up once, prepended, and restored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.config.helpers import MUT, PULL_RESOLVE, configure, host_order, load, snapshot

HARBOR = "https://harbor.example.com/v2/dockerhub"
DOCKER_HOSTS = f"""# operator's file, comments and quoting style kept in the backup
server = 'https://registry-1.docker.io'

[host.'{HARBOR}']
  capabilities = ['pull', 'resolve']
  override_path = true
  client = ['client.cert', 'client.key']
  [host.'{HARBOR}'.header]
    X-Team = ['a', 'b']
"""
MYHOST_HOSTS = """server = 'http://myhost.local'

[host.'http://myhost.local:80']
  skip_verify = true
"""


@pytest.fixture
def certs_d(tmp_path: Path) -> Path:
    path = tmp_path / "certs.d"
    (path / "docker.io").mkdir(parents=True)
    (path / "docker.io/hosts.toml").write_text(DOCKER_HOSTS)
    (path / "docker.io/client.cert").write_bytes(b"-----CERT-----\n\x00\xff")
    (path / "docker.io/client.key").write_bytes(b"-----KEY-----\n")
    os.chmod(path / "docker.io/client.key", 0o600)
    (path / "myhost.local").mkdir()
    (path / "myhost.local/hosts.toml").write_text(MYHOST_HOSTS)
    return path


def run(path: Path, prepend: bool) -> None:
    configure(
        path,
        "--mirrored-registries",
        "https://docker.io",
        "--mirror-targets",
        MUT,
        f"--prepend-existing={str(prepend).lower()}",
    )


def test_c24_prepend_backup_rerun_cleanup(certs_d: Path) -> None:
    original = snapshot(certs_d)
    key_mode = (certs_d / "docker.io/client.key").stat().st_mode

    run(certs_d, prepend=True)
    backup = snapshot(certs_d / "_backup")
    assert backup == original
    docker = load(certs_d / "docker.io/hosts.toml")
    assert docker["server"] == "https://registry-1.docker.io"
    assert host_order(docker) == [MUT, HARBOR]
    assert docker["host"][MUT] == PULL_RESOLVE
    assert docker["host"][HARBOR] == {
        "capabilities": ["pull", "resolve"],
        "override_path": True,
        "client": ["client.cert", "client.key"],
        "header": {"X-Team": ["a", "b"]},
    }
    for name in ("client.cert", "client.key"):
        assert (certs_d / "docker.io" / name).read_bytes() == original[f"docker.io/{name}"]
    assert (certs_d / "docker.io/client.key").stat().st_mode == key_mode
    # Recommended behaviour: a registry we do not mirror keeps its directory as it was.
    assert (certs_d / "myhost.local/hosts.toml").read_text() == MYHOST_HOSTS
    first = snapshot(certs_d)

    run(certs_d, prepend=True)
    assert snapshot(certs_d) == first
    assert snapshot(certs_d / "_backup") == original

    call_command("cleanup", f"--containerd-registry-config-path={certs_d}")
    assert snapshot(certs_d) == original
    assert not (certs_d / "_backup").exists()
    assert (certs_d / "docker.io/client.key").stat().st_mode == key_mode


def test_c24_prepend_off(certs_d: Path) -> None:
    original = snapshot(certs_d)
    run(certs_d, prepend=False)
    assert load(certs_d / "docker.io/hosts.toml") == {
        "server": "https://registry-1.docker.io",
        "host": {MUT: PULL_RESOLVE},
    }
    assert sorted(p.name for p in (certs_d / "docker.io").iterdir()) == ["hosts.toml"]
    assert snapshot(certs_d / "_backup") == original
    assert (certs_d / "myhost.local/hosts.toml").read_text() == MYHOST_HOSTS
    call_command("cleanup", f"--containerd-registry-config-path={certs_d}")
    assert snapshot(certs_d) == original


def test_backup_is_never_overwritten_even_when_flags_change(certs_d: Path) -> None:
    original = snapshot(certs_d)
    run(certs_d, prepend=False)
    run(certs_d, prepend=True)
    configure(certs_d, "--mirrored-registries", "*", "--mirror-targets", MUT)
    assert snapshot(certs_d / "_backup") == original
    # The wildcard run gives docker.io its original directory back and adds _default.
    assert (certs_d / "docker.io/hosts.toml").read_text() == DOCKER_HOSTS
    assert load(certs_d / "_default/hosts.toml") == {"host": {MUT: PULL_RESOLVE}}


def test_prepend_our_target_already_listed_keeps_ours_first(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    (path / "ghcr.io").mkdir(parents=True)
    (path / "ghcr.io/hosts.toml").write_text(
        f"server = 'https://ghcr.io'\n[host.'https://m.example']\nskip_verify = true\n"
        f"[host.'{MUT}']\ncapabilities = ['pull']\n"
    )
    configure(
        path,
        "--mirrored-registries",
        "https://ghcr.io",
        "--mirror-targets",
        MUT,
        "--prepend-existing=true",
    )
    document = load(path / "ghcr.io/hosts.toml")
    assert host_order(document) == [MUT, "https://m.example"]
    assert document["host"][MUT] == PULL_RESOLVE


def test_prepend_broken_existing_file_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    (path / "ghcr.io").mkdir(parents=True)
    (path / "ghcr.io/hosts.toml").write_text("server = 'unterminated\n")
    before = snapshot(path)
    with pytest.raises(CommandError, match=r"cannot parse existing .*ghcr\.io/hosts\.toml"):
        configure(
            path,
            "--mirrored-registries",
            "https://ghcr.io",
            "--mirror-targets",
            MUT,
            "--prepend-existing=true",
        )
    assert snapshot(path) == before


def test_empty_directory_cleanup_leaves_it_empty(tmp_path: Path) -> None:
    path = tmp_path / "certs.d"
    configure(path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", MUT)
    assert sorted(p.name for p in path.iterdir()) == ["_backup", "ghcr.io"]
    call_command("cleanup", f"--containerd-registry-config-path={path}")
    assert list(path.iterdir()) == []
    # A second cleanup finds no backup and changes nothing.
    call_command("cleanup", f"--containerd-registry-config-path={path}")
    assert list(path.iterdir()) == []


def test_interrupted_first_backup_is_finished(certs_d: Path) -> None:
    original = snapshot(certs_d)
    partial = certs_d / "_backup.partial"
    partial.mkdir()
    os.rename(certs_d / "myhost.local", partial / "myhost.local")
    run(certs_d, prepend=True)
    assert host_order(load(certs_d / "docker.io/hosts.toml")) == [MUT, HARBOR]
    assert (certs_d / "myhost.local/hosts.toml").read_text() == MYHOST_HOSTS
    assert snapshot(certs_d / "_backup") == original
    assert not partial.exists()
