"""Bad input, fuzzed with hypothesis against the LIVE node (session fixture ``local_node``).

Request targets are sent verbatim over a raw HTTP/1.1 connection (no client-side path
normalisation), so ``..``, ``%2f``, absolute URIs and odd bytes reach the server as written.
Properties: never a 5xx for client input, never a traceback, a 4xx GET always carries the OCI
JSON error body, a HEAD never a body. Example counts are bounded; the totals are printed.
"""

from __future__ import annotations

import http.client
import os
import string
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LocalNode
from tests.fixtures.cases import DIGESTS
from tests.reliability.conftest import assert_oci_error

pytestmark = pytest.mark.slow

# 400 per property in CI (the same inputs every run); SPEGEL_FUZZ_EXAMPLES=5000 for a longer,
# randomised hunt.
EXAMPLES = int(os.environ.get("SPEGEL_FUZZ_EXAMPLES", "400"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SPEGEL_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
TRIED: dict[str, int] = {}

L, I = DIGESTS["L"], DIGESTS["I"]
PCHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/"
pchar_text = st.text(alphabet=PCHARS, max_size=80)
hexes = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=140)
digests = st.one_of(
    st.sampled_from(
        [L, I, L.upper(), "sha256:", "sha256:abc", "md5:5eb63bbbe01eeed093cb22bb8f5acdc3"]
    ),
    st.builds(
        lambda a, h: f"{a}:{h}", st.sampled_from(["sha256", "sha512", "SHA256", "md5", ""]), hexes
    ),
)
tags = st.one_of(
    st.sampled_from(["1.25", "latest", ".hidden", "a" * 129, "1.25/", "-x", "_x", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=140),
)
names = st.one_of(
    st.sampled_from(
        [
            "library/nginx",
            "Library/Nginx",
            "..",
            "../../etc",
            "%2e%2e/%2e%2e/etc",
            "library%2fnginx",
            "a//b",
            "a/./b",
            "x" * 300,
            "",
            "v2",
            "blobs",
            "manifests",
        ]
    ),
    st.lists(
        st.text(alphabet=string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=20),
        min_size=1,
        max_size=5,
    ).map("/".join),
    pchar_text,
)
ns_values = st.one_of(
    st.sampled_from(
        [
            "",
            "docker.io",
            "127.0.0.99:1234",
            "http://127.0.0.99:1234/",
            "[::1]:5000",
            "evil.example/../x",
            "DOCKER.IO",
            " ",
            "registry-1.docker.io",
            "%00",
            "\x00",
        ]
    ),
    st.text(max_size=120),
)


def encode_ns(value: str) -> str:
    return quote(value, safe="")


def send(node: LocalNode, method: str, target: str, headers: dict[str, str] | None = None):
    """One request, target verbatim; returns (status, content type, body)."""
    netloc = urlsplit(node.url).netloc
    host, port = netloc.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": netloc, **(headers or {})}
        for key, value in hdrs.items():
            conn.putheader(key, value.encode("latin-1", "replace"))
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.getheader("content-type") or "", body
    finally:
        conn.close()


def check(name: str, status: int, content_type: str, body: bytes, method: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1
    assert status < 500, (status, body[:300])
    assert b"Traceback" not in body and b'File "' not in body, body[:300]
    if (status >= 400 and status != 400) or (status == 400 and body.startswith(b"{")):
        assert_oci_error(status, content_type, body, method)
    if method == "HEAD":
        assert body == b""


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(f"\nfuzz inputs tried against the live node: {TRIED} total {sum(TRIED.values())}")


@SETTINGS
@given(
    name=names,
    endpoint=st.sampled_from(["/manifests/", "/blobs/", "/tags/", "/", "/blobs/uploads/"]),
    ref=st.one_of(digests, tags, pchar_text),
    tail=st.sampled_from(["", "/", "/../../x", "?", "#frag", "%2f..", "/."]),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_fuzz_paths(local_node: LocalNode, name, endpoint, ref, tail, method) -> None:
    target = f"/v2/{name}{endpoint}{ref}{tail}"
    if any(c in target for c in " \r\n\x00\x7f"):
        target = quote(target, safe=PCHARS)
    status, ctype, body = send(local_node, method, target)
    check("paths", status, ctype, body, method)


@SETTINGS
@given(
    kind=st.sampled_from(["manifests", "blobs"]),
    ref=st.one_of(digests, tags),
    ns=ns_values,
    extra=st.sampled_from(["", "&ns=docker.io", "&ns=", "&foo=bar", "&ns=127.0.0.99:1234"]),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_fuzz_references_and_ns(local_node: LocalNode, kind, ref, ns, extra, method) -> None:
    target = f"/v2/library/nginx/{kind}/{quote(ref, safe=PCHARS)}?ns={encode_ns(ns)}{extra}"
    status, ctype, body = send(local_node, method, target)
    check("refs+ns", status, ctype, body, method)
    if kind == "blobs" and ref == L and status == 200 and method == "GET":
        assert body == b"hello world"


header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"),
    max_size=200,
)
range_values = st.one_of(
    st.sampled_from(
        [
            "bytes=0-4",
            "bytes=6-",
            "bytes=-5",
            "bytes=5-1",
            "bytes=0-0,2-3",
            "bytes=",
            "bytes=99999999999999999999999-",
            "bytes=-0",
            "bytes=11-",
            "bytes=-99999",
            "items=0-1",
            "bytes=0-4 ",
            " bytes=0-4",
            "bytes=0x10-",
        ]
    ),
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.none(), st.integers(-5, 2**70)).map(lambda v: "" if v is None else str(v)),
        st.one_of(st.none(), st.integers(-5, 2**70)).map(lambda v: "" if v is None else str(v)),
    ),
    header_values,
)


@SETTINGS
@given(
    target=st.sampled_from(
        [
            f"/v2/library/nginx/blobs/{L}?ns=docker.io",
            f"/v2/library/nginx/blobs/{DIGESTS['C']}",
            "/v2/library/nginx/manifests/1.25?ns=docker.io",
            f"/v2/library/nginx/manifests/{I}",
            "/v2/library/nginx/manifests/9.9?ns=docker.io",
            "/v2/",
        ]
    ),
    range_header=range_values,
    accept=st.one_of(st.none(), header_values),
    mirrored=st.one_of(
        st.none(), st.sampled_from(["true", "TRUE", "false", "1", ""]), header_values
    ),
    auth=st.one_of(st.none(), header_values, st.just("Basic !!!notbase64")),
    xff=st.one_of(st.none(), header_values),
    host=st.one_of(
        st.none(), st.sampled_from(["127.0.0.99:1234", "evil.example", "", "[::1]"]), header_values
    ),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_fuzz_headers(
    local_node, target, range_header, accept, mirrored, auth, xff, host, method
) -> None:
    headers = {"Range": range_header}
    for key, value in (
        ("Accept", accept),
        ("X-Spegel-Mirrored", mirrored),
        ("Authorization", auth),
        ("X-Forwarded-For", xff),
        ("Host", host),
    ):
        if value is not None:
            headers[key] = value
    status, ctype, body = send(local_node, method, target, headers)
    check("headers", status, ctype, body, method)
    if status == 206 and target.startswith(f"/v2/library/nginx/blobs/{L}") and method == "GET":
        assert body and body in b"hello world"


@SETTINGS
@given(
    method=st.sampled_from(
        [
            "PUT",
            "POST",
            "PATCH",
            "DELETE",
            "OPTIONS",
            "TRACE",
            "PROPFIND",
            "CONNECT",
            "FOO",
            "get",
            "GET",
            "HEAD",
        ]
    ),
    target=st.one_of(
        st.sampled_from(
            [
                "/v2/",
                "/v2",
                f"/v2/library/nginx/blobs/{L}",
                "/v2/library/nginx/blobs/uploads/",
                "/v2/library/nginx/manifests/1.25",
                "/v2/_catalog",
                "/admin/",
                "/metrics",
                "/visualize/",
                "/",
                "/readyz",
                "/livez",
                "//v2/",
                "/v2/../admin/",
                "/static/x.js",
                "*",
                "http://127.0.0.99:1234/v2/",
                "/%2e%2e/admin/",
            ]
        ),
        pchar_text.map(lambda t: "/" + t),
    ),
    body=st.binary(max_size=64),
)
def test_fuzz_methods_and_targets(local_node: LocalNode, method, target, body) -> None:
    netloc = urlsplit(local_node.url).netloc
    host, port = netloc.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", netloc)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        status, ctype = resp.status, resp.getheader("content-type") or ""
    finally:
        conn.close()
    check("methods", status, ctype, data, method)
    path = urlsplit(target).path if target.startswith("http") else target.split("?")[0]
    if method not in ("GET", "HEAD"):
        assert status in (400, 404, 405), (method, target, status)
    elif path not in ("/v2", "/v2/", "/readyz", "/livez") and not path.startswith("/v2/"):
        assert status in (400, 404), (method, target, status)
