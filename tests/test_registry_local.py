"""The registry port against a live node and a real containerd (CASES.md C01-C20)."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest

from registry.devcluster.images import ImageBuilder, write_oci_archive
from tests.conftest import LocalNode
from tests.fixtures.cases import BLOBS, DIGESTS

pytestmark = pytest.mark.slow

ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"
)
INDEX = "application/vnd.oci.image.index.v1+json"
L, M, I, I0 = DIGESTS["L"], DIGESTS["M"], DIGESTS["I"], DIGESTS["I0"]


@pytest.fixture(scope="module")
def client(local_node: LocalNode):
    with httpx.Client(base_url=local_node.url, timeout=10) as c:
        yield c


def error_code(resp: httpx.Response) -> str:
    assert resp.headers["content-type"] == "application/json"
    return resp.json()["errors"][0]["code"]


def test_api_version_check(client: httpx.Client) -> None:
    for path in ("/v2/", "/v2"):
        resp = client.get(path)
        assert resp.status_code == 200
        assert resp.headers["docker-distribution-api-version"] == "registry/2.0"


def test_c02_manifest_head_and_get_carry_the_same_headers(client: httpx.Client) -> None:
    path = "/v2/library/nginx/manifests/1.25?ns=docker.io"
    head = client.head(path, headers={"Accept": ACCEPT})
    get = client.get(path, headers={"Accept": ACCEPT})
    for resp in (head, get):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == INDEX
        assert resp.headers["content-length"] == "289"
        assert resp.headers["docker-content-digest"] == I
        assert resp.headers["oci-namespace"] == "docker.io"
    assert head.content == b""
    assert get.content == BLOBS["I"]
    assert "sha256:" + hashlib.sha256(get.content).hexdigest() == I


def test_c03_blob_head_matches_get(client: httpx.Client) -> None:
    head = client.head(f"/v2/library/nginx/blobs/{L}?ns=docker.io")
    assert head.status_code == 200
    assert head.headers["content-length"] == "11"
    assert head.headers["docker-content-digest"] == L
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"] == "application/octet-stream"
    assert head.content == b""
    get = client.get(f"/v2/library/nginx/blobs/{L}?ns=docker.io")
    assert get.status_code == 200 and get.content == b"hello world"


def test_c01_missing_everywhere_is_a_fast_404_with_oci_body(client: httpx.Client) -> None:
    start = time.monotonic()
    resp = client.get(
        "/v2/rancher/mirrored-pause/manifests/bogus?ns=docker.io",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, */*"},
    )
    assert resp.status_code == 404
    assert error_code(resp) == "MANIFEST_UNKNOWN"
    zero = "sha256:" + "0" * 64
    head = client.head(f"/v2/library/nginx/blobs/{zero}?ns=docker.io")
    assert head.status_code == 404 and head.content == b""
    get = client.get(f"/v2/library/nginx/blobs/{zero}?ns=docker.io")
    assert get.status_code == 404 and error_code(get) == "BLOB_UNKNOWN"
    assert time.monotonic() - start < 3.0


def test_c05_digest_under_the_wrong_endpoint(client: httpx.Client) -> None:
    head = client.head(f"/v2/library/nginx/blobs/{M}?ns=docker.io")
    get = client.get(f"/v2/library/nginx/blobs/{M}?ns=docker.io")
    assert head.status_code == 404 and get.status_code == 404
    assert error_code(get) == "BLOB_UNKNOWN"
    wrong = client.get(f"/v2/library/nginx/manifests/{L}?ns=docker.io")
    assert wrong.status_code == 404 and error_code(wrong) == "MANIFEST_UNKNOWN"


@pytest.mark.parametrize("accept", [None, "application/vnd.oci.image.manifest.v1+json"])
def test_c06_accept_never_converts(client: httpx.Client, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    resp = client.get("/v2/library/nginx/manifests/1.25?ns=docker.io", headers=headers)
    assert resp.status_code == 200
    assert resp.content == BLOBS["I"]
    assert resp.headers["content-type"] == INDEX
    assert resp.headers["docker-content-digest"] == I


def test_c06_index_without_media_type_field(client: httpx.Client) -> None:
    head = client.head("/v2/library/busybox/manifests/1?ns=docker.io")
    get = client.get(f"/v2/library/busybox/manifests/{I0}?ns=docker.io")
    for resp in (head, get):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == INDEX
        assert resp.headers["content-length"] == "235"
        assert resp.headers["docker-content-digest"] == I0
    assert get.content == BLOBS["I0"]


def test_c08_requests_without_ns(client: httpx.Client) -> None:
    blob = client.get(f"/v2/library/nginx/blobs/{L}")
    assert blob.status_code == 200 and blob.content == b"hello world"
    head = client.head(f"/v2/library/nginx/manifests/{I}")
    assert head.status_code == 200
    assert head.headers["docker-content-digest"] == I
    assert "oci-namespace" not in head.headers
    for path in ("/v2/library/nginx/manifests/1.25", "/v2/library/nginx/manifests/1.25?ns="):
        resp = client.get(path)
        assert resp.status_code == 404
        body = resp.json()["errors"][0]
        assert body["code"] in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN")
        assert "ns" in body["message"]


def test_c09_ns_is_tolerated_and_echoed(client: httpx.Client) -> None:
    for query in ("ns=docker.io", "ns=docker.io&foo=bar"):
        resp = client.get(f"/v2/library/nginx/manifests/1.25?{query}")
        assert resp.status_code == 200
        assert resp.headers["oci-namespace"] == "docker.io"
    blob = client.get(f"/v2/library/nginx/blobs/{L}?ns=ghcr.io")
    assert blob.status_code == 200 and blob.content == b"hello world"


@pytest.mark.parametrize(
    ("method", "path", "status", "codes"),
    [
        ("GET", "/v2/library/nginx/blobs/sha256:abc", 404, {"DIGEST_INVALID", "BLOB_UNKNOWN"}),
        ("GET", "/v2/library/nginx/blobs/sha256:" + L[7:].upper(), 404, {"DIGEST_INVALID"}),
        (
            "GET",
            "/v2/library/nginx/blobs/md5:5eb63bbbe01eeed093cb22bb8f5acdc3",
            404,
            {"DIGEST_INVALID"},
        ),
        ("GET", "/v2/library/nginx/blobs/latest", 404, {"BLOB_UNKNOWN"}),
        ("GET", f"/v2/../../etc/passwd/blobs/{L}", 404, {"NAME_INVALID", "NOT_FOUND"}),
        ("GET", f"/v2/%2e%2e/%2e%2e/etc/blobs/{L}", 404, {"NAME_INVALID", "NOT_FOUND"}),
        ("GET", f"/v2/library/nginx/blobs/{L}/../../x", 404, None),
        ("GET", "/v2/Library/Nginx/manifests/latest", 404, {"NAME_INVALID"}),
        ("GET", "/v2/library/nginx/manifests/" + "a" * 129, 404, {"MANIFEST_UNKNOWN"}),
        ("GET", "/v2/library/nginx/manifests/.hidden", 404, {"MANIFEST_UNKNOWN"}),
        ("GET", "/v2/library/nginx/manifests/1.25/", 404, None),
        ("PUT", "/v2/library/nginx/manifests/1.25", 405, {"UNSUPPORTED"}),
        ("POST", "/v2/library/nginx/blobs/uploads/", 405, {"UNSUPPORTED"}),
        ("PATCH", f"/v2/library/nginx/blobs/{L}", 405, {"UNSUPPORTED"}),
        ("DELETE", f"/v2/library/nginx/manifests/{I}", 405, {"UNSUPPORTED"}),
    ],
)
def test_c12_bad_paths_are_rejected_before_any_lookup(
    client: httpx.Client, method: str, path: str, status: int, codes: set[str] | None
) -> None:
    sep = "&" if "?" in path else "?"
    resp = client.request(method, f"{path}{sep}ns=docker.io")
    assert resp.status_code == status
    body = resp.json()
    assert "errors" in body
    if codes is not None:
        assert body["errors"][0]["code"] in codes


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        (None, 200, None, b"hello world"),
        ("bytes=0-4", 206, "bytes 0-4/11", b"hello"),
        ("bytes=6-", 206, "bytes 6-10/11", b"world"),
        ("bytes=-5", 206, "bytes 6-10/11", b"world"),
        ("bytes=6-100", 206, "bytes 6-10/11", b"world"),
        ("bytes=0-10", 206, "bytes 0-10/11", b"hello world"),
        ("bytes=0-1,3-4", 200, None, b"hello world"),  # multi-range: ignored
        ("bytes=abc", 200, None, b"hello world"),  # malformed: ignored
    ],
)
def test_c14_ranges(
    client: httpx.Client, header: str | None, status: int, content_range: str | None, body: bytes
) -> None:
    headers = {"Range": header} if header else {}
    path = f"/v2/library/nginx/blobs/{L}?ns=docker.io"
    for resp in (client.get(path, headers=headers), client.head(path, headers=headers)):
        assert resp.status_code == status
        assert resp.headers.get("content-range") == content_range
        assert resp.headers["content-length"] == str(len(body))
        assert resp.headers["accept-ranges"] == "bytes"
        assert resp.headers["docker-content-digest"] == L
        assert resp.headers["content-type"] == "application/octet-stream"
    assert client.get(path, headers=headers).content == body


def test_c14_unsatisfiable_range(client: httpx.Client) -> None:
    resp = client.get(f"/v2/library/nginx/blobs/{L}?ns=docker.io", headers={"Range": "bytes=11-"})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == "bytes */11"
    assert resp.headers["docker-content-digest"] == L
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.json()["errors"][0]["code"] == "RANGE_INVALID"


def test_c19_source_address_and_xff_change_nothing(local_node: LocalNode) -> None:
    path = "/v2/library/nginx/manifests/1.25?ns=docker.io"
    answers = []
    for source in ("127.0.0.1", "127.0.0.9"):
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=local_node.url, transport=transport) as c:
            answers.append(c.get(path))
            answers.append(c.get(path, headers={"X-Forwarded-For": "203.0.113.9"}))
    for resp in answers:
        assert resp.status_code == 200
        assert resp.content == BLOBS["I"]
        assert resp.headers["docker-content-digest"] == I


def test_built_images_byte_for_byte(local_node: LocalNode, client: httpx.Client) -> None:
    for image in local_node.images.values():
        ns = image.registry
        resp = client.get(f"/v2/{image.repository}/manifests/{image.tag}?ns={ns}")
        assert resp.status_code == 200
        assert resp.content == image.top.data
        assert resp.headers["content-type"] == image.top.media_type
        assert resp.headers["docker-content-digest"] == image.digest
        for manifest in image.manifests:
            got = client.get(f"/v2/{image.repository}/manifests/{manifest.digest}?ns={ns}")
            assert got.content == manifest.data
            assert got.headers["content-type"] == manifest.media_type
        for blob in [*image.configs, *image.layers]:
            sha = hashlib.sha256()
            size = 0
            with client.stream("GET", f"/v2/{image.repository}/blobs/{blob.digest}?ns={ns}") as r:
                assert r.status_code == 200
                assert r.headers["content-length"] == str(blob.size)
                for chunk in r.iter_bytes():
                    sha.update(chunk)
                    size += len(chunk)
            assert size == blob.size
            assert "sha256:" + sha.hexdigest() == blob.digest


def test_registry_port_serves_nothing_else(client: httpx.Client) -> None:
    for path in ("/metrics", "/admin/", "/visualize/", "/"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert "errors" in resp.json()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_admin_port_never_serves_v2(local_node: LocalNode) -> None:
    resp = httpx.get(f"{local_node.spegel.admin_url}/v2/library/nginx/blobs/{L}?ns=docker.io")
    assert resp.status_code == 404
    assert b"hello world" not in resp.content


def test_c20_blob_absent_from_store_is_404_not_500(local_node: LocalNode, workdir) -> None:
    """An image record can reference a blob the store no longer holds (GC, lazy pull)."""
    image = ImageBuilder(workdir / "gc-images", seed=20).image("127.0.0.1:5999/test/gc:v1", [4096])
    local_node.containerd.import_archive(write_oci_archive([image], workdir / "gc.tar"))
    layer = image.layers[0]
    local_node.containerd.ctr("content", "rm", layer.digest)
    path = f"/v2/{image.repository}/blobs/{layer.digest}?ns={image.registry}"
    peer_request = httpx.get(local_node.url + path, headers={"X-Spegel-Mirrored": "true"})
    assert peer_request.status_code == 404
    assert json.loads(peer_request.content)["errors"][0]["code"] == "BLOB_UNKNOWN"
    own_request = httpx.get(local_node.url + path)
    assert own_request.status_code == 404
    manifest = httpx.get(f"{local_node.url}/v2/{image.repository}/manifests/v1?ns={image.registry}")
    assert manifest.status_code == 200 and manifest.content == image.top.data
