"""Unit tests: path grammar, ranges, filters, flag parsing, media type detection."""

from __future__ import annotations

import argparse
import re

import pytest

from registry.config import REGISTRY_FLAGS, SpegelConfig, add_flags, parse_byterate, parse_duration
from registry.content import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, detect_media_type
from registry.distribution import parse_path
from registry.errors import DigestInvalid, ManifestUnknown, NameInvalid, NameUnknown
from registry.filters import ReferenceFilter
from registry.ranges import ByteRange, Unsatisfiable, parse_range
from tests.fixtures.cases import BLOBS, DIGESTS

L = DIGESTS["L"]


@pytest.mark.parametrize(
    ("path", "ns", "kind", "key"),
    [
        (
            "/v2/library/nginx/manifests/1.25",
            "docker.io",
            "manifest",
            "docker.io/library/nginx:1.25",
        ),
        (f"/v2/library/nginx/manifests/{L}", "", "manifest", L),
        (f"/v2/library/nginx/blobs/{L}", "ghcr.io", "blob", L),
        ("/v2/a/blobs/b/manifests/v1", "quay.io", "manifest", "quay.io/a/blobs/b:v1"),
        ("/v2/x/manifests/y", "index.docker.io", "manifest", "docker.io/x:y"),
        ("/v2/x/manifests/y", "registry-1.docker.io", "manifest", "docker.io/x:y"),
        ("/v2/a__b/c-d.e/manifests/Tag_1.0", "r:5000", "manifest", "r:5000/a__b/c-d.e:Tag_1.0"),
    ],
)
def test_parse_valid(path: str, ns: str, kind: str, key: str) -> None:
    ref = parse_path(path, ns)
    assert ref.kind == kind
    assert ref.key == key


@pytest.mark.parametrize(
    ("path", "ns", "error"),
    [
        ("/v2/library/nginx/blobs/sha256:abc", "docker.io", DigestInvalid),
        ("/v2/library/nginx/blobs/md5:5eb63bbbe01eeed093cb22bb8f5acdc3", "", DigestInvalid),
        ("/v2/Library/nginx/manifests/x", "docker.io", NameInvalid),
        ("/v2/../etc/blobs/" + L, "", NameInvalid),
        ("/v2/a//b/blobs/" + L, "", NameInvalid),
        ("/v2/a/manifests/" + "a" * 129, "docker.io", ManifestUnknown),
        ("/v2/a/manifests/-x", "docker.io", ManifestUnknown),
        ("/v2/a/manifests/v1", "", NameUnknown),
        ("/v2/a/tags/list", "", NameUnknown),
        ("/v2/" + "a" * 256 + "/manifests/v1", "docker.io", NameInvalid),
    ],
)
def test_parse_invalid(path: str, ns: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_path(path, ns)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-4", ByteRange(0, 4)),
        ("bytes=6-", ByteRange(6, 10)),
        ("bytes=-5", ByteRange(6, 10)),
        ("bytes=-50", ByteRange(0, 10)),
        ("bytes=6-100", ByteRange(6, 10)),
        ("bytes=0-1,2-3", None),
        ("items=0-1", None),
        ("bytes=5-2", None),
    ],
)
def test_ranges(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 11) == expected


@pytest.mark.parametrize("header", ["bytes=11-", "bytes=20-30", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 11)


def test_c07_filters() -> None:
    flt = ReferenceFilter.build(["https://docker.io"], [".*:latest$"])
    assert flt.reason_blocked(parse_path("/v2/library/nginx/manifests/latest", "docker.io"))
    assert flt.reason_blocked(parse_path("/v2/library/nginx/manifests/1.25", "docker.io")) is None
    by_digest = parse_path(f"/v2/library/nginx/manifests/{DIGESTS['I']}", "docker.io")
    assert flt.reason_blocked(by_digest) is None
    assert "not mirrored" in flt.reason_blocked(
        parse_path("/v2/coreos/etcd/manifests/v3", "quay.io")
    )
    # digest without ns: the allow-list does not apply (C08)
    assert flt.reason_blocked(parse_path(f"/v2/x/blobs/{L}", "")) is None


@pytest.mark.parametrize("wildcard", [[], ["*"], ["_default"]])
def test_c25_wildcards_mirror_everything(wildcard: list[str]) -> None:
    flt = ReferenceFilter.build(wildcard, [])
    for ns in ("quay.io", "registry.k8s.io"):
        assert flt.reason_blocked(parse_path("/v2/a/manifests/v1", ns)) is None


def test_resolve_latest_off() -> None:
    flt = ReferenceFilter.build([], [], resolve_latest=False)
    assert flt.reason_blocked(parse_path("/v2/a/manifests/latest", "docker.io"))
    assert flt.reason_blocked(parse_path("/v2/a/manifests/v2", "docker.io")) is None


def test_media_type_detection() -> None:
    assert detect_media_type(BLOBS["I"]) == OCI_INDEX
    assert detect_media_type(BLOBS["I0"]) == OCI_INDEX
    assert detect_media_type(BLOBS["M"]) == OCI_MANIFEST
    assert detect_media_type(BLOBS["C"]) is None
    assert detect_media_type(BLOBS["L"]) is None
    docker = (
        b'{"schemaVersion":2,"config":{"mediaType":'
        b'"application/vnd.docker.container.image.v1+json"},"layers":[]}'
    )
    assert detect_media_type(docker) == DOCKER_MANIFEST
    assert detect_media_type(
        BLOBS["I0"], "application/vnd.docker.distribution.manifest.list.v2+json"
    ) == ("application/vnd.docker.distribution.manifest.list.v2+json")


def test_flags_and_env_map_to_one_config() -> None:
    parser = argparse.ArgumentParser()
    env = {"MIRROR_RESOLVE_TIMEOUT": "50ms", "MIRRORED_REGISTRIES": "https://a.io,https://b.io"}
    add_flags(parser, REGISTRY_FLAGS, env)
    opts = vars(parser.parse_args(["--registry-addr", ":6000", "--resolve-latest-tag", "false"]))
    config = SpegelConfig.from_options(opts)
    assert config.registry_addr == ":6000" and config.registry_port == 6000
    assert config.mirror_resolve_timeout == pytest.approx(0.05)
    assert config.mirrored_registries == ["https://a.io", "https://b.io"]
    assert config.resolve_latest_tag is False
    assert SpegelConfig.from_env({"BLOB_SPEED": "10MBps"}).blob_speed == "10MBps"


@pytest.mark.parametrize(
    ("text", "seconds"), [("20ms", 0.02), ("1.5s", 1.5), ("2m", 120.0), ("3", 3.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_byterates() -> None:
    assert parse_byterate("100MBps") == 100 * 1024 * 1024
    assert parse_byterate("1 KBps") == 1024
    assert parse_byterate("") == 0
    with pytest.raises(ValueError, match=re.escape("invalid byte rate")):
        parse_byterate("fast")
