"""C11, C25, resolve-tags and IPv6: the files ``manage.py configuration`` writes (parsed TOML)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError

from tests.config.helpers import MUT, MUT2, PULL_RESOLVE, configure, host_order, load, written


def test_c11_three_registries_two_targets(tmp_path: Path) -> None:
    configure(
        tmp_path,
        "--mirrored-registries",
        "https://docker.io",
        "https://ghcr.io",
        "http://foo.bar:5000",
        "--mirror-targets",
        MUT,
        MUT2,
    )
    assert written(tmp_path) == [
        "docker.io/hosts.toml",
        "foo.bar:5000/hosts.toml",
        "ghcr.io/hosts.toml",
    ]
    servers = {
        "docker.io": "https://registry-1.docker.io",
        "ghcr.io": "https://ghcr.io",
        "foo.bar:5000": "http://foo.bar:5000",
    }
    for directory, server in servers.items():
        document = load(tmp_path / directory / "hosts.toml")
        assert document == {"server": server, "host": {MUT: PULL_RESOLVE, MUT2: PULL_RESOLVE}}
        assert host_order(document) == [MUT, MUT2]
    assert (
        (tmp_path / "docker.io/hosts.toml")
        .read_text()
        .startswith('server = "https://registry-1.docker.io"\n\n[host."http://127.0.0.1:30020"]\n')
    )


def test_target_order_is_kept_not_sorted(tmp_path: Path) -> None:
    targets = ["http://127.0.0.1:30021", "http://127.0.0.9:5000", "http://127.0.0.1:30020"]
    configure(tmp_path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", *targets)
    assert host_order(load(tmp_path / "ghcr.io/hosts.toml")) == targets


@pytest.mark.parametrize(
    ("registries", "message"),
    [
        (["docker.io"], "has no scheme"),
        (["https://docker.io/v2"], "has a path '/v2'"),
        (["https://docker.io/"], "has a path '/'"),
        (["ftp://x"], "scheme must be http or https"),
        (["https://u:p@x"], "must not contain user info"),
        (["https://x?a=b"], "must not have a query"),
        (["https://x#frag"], "must not have a fragment"),
        (["https://x:notaport"], "entry 'https://x:notaport'"),
        (["*", "_default"], "wildcard more than once"),
        (["*", "*"], "wildcard more than once"),
        (["https://ghcr.io", "https://ghcr.io"], "'ghcr.io' twice"),
        (["https://ghcr.io", "docker.io"], "'docker.io' has no scheme"),
        (["http://_backup"], "must not start with '_'"),
    ],
)
def test_c11_bad_registry_writes_nothing(
    tmp_path: Path, registries: list[str], message: str
) -> None:
    config = tmp_path / "certs.d"
    with pytest.raises(CommandError, match=message.replace("?", r"\?")):
        configure(config, "--mirrored-registries", *registries, "--mirror-targets", MUT)
    assert not config.exists()
    assert not list(tmp_path.rglob("https:*"))


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "mirror targets are required"),
        (["127.0.0.1:30020"], "has no scheme"),
        (["http://127.0.0.1:30020/v2"], "has a path"),
        ([MUT, MUT], "twice"),
    ],
)
def test_bad_targets_write_nothing(tmp_path: Path, targets: list[str], message: str) -> None:
    config = tmp_path / "certs.d"
    config.mkdir()
    (config / "keep").write_text("x")
    with pytest.raises(CommandError, match=message):
        configure(config, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", *targets)
    assert [p.name for p in config.iterdir()] == ["keep"]


@pytest.mark.parametrize("registries", [[], ["*"], ["_default"]])
def test_c25_wildcard_writes_default_without_server(tmp_path: Path, registries: list[str]) -> None:
    configure(tmp_path, "--mirrored-registries", *registries, "--mirror-targets", MUT)
    assert written(tmp_path) == ["_default/hosts.toml"]
    assert load(tmp_path / "_default/hosts.toml") == {"host": {MUT: PULL_RESOLVE}}


def test_c25_no_flag_at_all_means_every_registry(tmp_path: Path) -> None:
    configure(tmp_path, "--mirror-targets", MUT)
    assert written(tmp_path) == ["_default/hosts.toml"]


def test_c25_wildcard_plus_explicit_writes_both(tmp_path: Path) -> None:
    configure(tmp_path, "--mirrored-registries", "*", "https://ghcr.io", "--mirror-targets", MUT)
    assert written(tmp_path) == ["_default/hosts.toml", "ghcr.io/hosts.toml"]
    assert "server" not in load(tmp_path / "_default/hosts.toml")
    assert load(tmp_path / "ghcr.io/hosts.toml")["server"] == "https://ghcr.io"


def test_c07_resolve_tags_false_pull_only(tmp_path: Path) -> None:
    configure(
        tmp_path,
        "--mirrored-registries",
        "https://docker.io",
        "--mirror-targets",
        MUT,
        MUT2,
        "--resolve-tags=false",
    )
    hosts = load(tmp_path / "docker.io/hosts.toml")["host"]
    assert [h["capabilities"] for h in hosts.values()] == [["pull"], ["pull"]]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://fd00::1:30020", "http://[fd00::1]:30020"),
        ("http://[fd00::1]:30020", "http://[fd00::1]:30020"),
        ("http://fd00::1", "http://[fd00::1]"),
        ("http://[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_ipv6_targets_bracketed(tmp_path: Path, target: str, expected: str) -> None:
    configure(tmp_path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", target, MUT)
    assert host_order(load(tmp_path / "ghcr.io/hosts.toml")) == [expected, MUT]


def test_ipv6_registry_directory(tmp_path: Path) -> None:
    configure(tmp_path, "--mirrored-registries", "http://[fd00::5]:5000", "--mirror-targets", MUT)
    assert load(tmp_path / "[fd00::5]:5000/hosts.toml")["server"] == "http://[fd00::5]:5000"


def test_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERD_REGISTRY_CONFIG_PATH", str(tmp_path))
    monkeypatch.setenv("MIRRORED_REGISTRIES", "https://docker.io,https://ghcr.io")
    monkeypatch.setenv("MIRROR_TARGETS", f"{MUT2} {MUT}")
    monkeypatch.setenv("RESOLVE_TAGS", "false")
    from django.core.management import call_command

    call_command("configuration")
    assert written(tmp_path) == ["docker.io/hosts.toml", "ghcr.io/hosts.toml"]
    document = load(tmp_path / "docker.io/hosts.toml")
    assert host_order(document) == [MUT2, MUT]
    assert document["host"][MUT]["capabilities"] == ["pull"]


def test_flags_override_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_TARGETS", MUT2)
    monkeypatch.setenv("MIRRORED_REGISTRIES", "https://quay.io")
    configure(tmp_path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", MUT)
    assert written(tmp_path) == ["ghcr.io/hosts.toml"]
    assert host_order(load(tmp_path / "ghcr.io/hosts.toml")) == [MUT]


def test_rerun_is_idempotent_and_follows_flag_changes(tmp_path: Path) -> None:
    configure(tmp_path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", MUT)
    first = (tmp_path / "ghcr.io/hosts.toml").read_bytes()
    configure(tmp_path, "--mirrored-registries", "https://ghcr.io", "--mirror-targets", MUT)
    assert (tmp_path / "ghcr.io/hosts.toml").read_bytes() == first
    configure(tmp_path, "--mirrored-registries", "https://quay.io", "--mirror-targets", MUT)
    assert written(tmp_path) == ["quay.io/hosts.toml"]


def test_basic_auth_header_for_every_mirror(tmp_path) -> None:
    import tomllib

    from django.core.management import call_command

    secrets = tmp_path / "auth"
    secrets.mkdir()
    (secrets / "username").write_text("spegel")
    (secrets / "password").write_text("pw")
    certs = tmp_path / "certs.d"
    call_command(
        "configuration",
        f"--containerd-registry-config-path={certs}",
        "--mirrored-registries",
        "https://ghcr.io",
        "--mirror-targets",
        "http://127.0.0.1:30020",
        "http://127.0.0.1:30021",
        f"--basic-auth-dir={secrets}",
    )
    doc = tomllib.loads((certs / "ghcr.io" / "hosts.toml").read_text())
    assert list(doc["host"]) == ["http://127.0.0.1:30020", "http://127.0.0.1:30021"]
    for table in doc["host"].values():
        assert table["header"] == {"Authorization": "Basic c3BlZ2VsOnB3"}
        assert table["capabilities"] == ["pull", "resolve"]
