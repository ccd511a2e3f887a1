"""The read-only OCI distribution API on the registry port: serve locally, else mirror."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from registry import metrics
from registry.auth import BasicAuth
from registry.content import is_unavailable
from registry.distribution import REGISTRY_HOST_RE, Reference, parse_path
from registry.errors import (
    BlobUnknown,
    InternalError,
    ManifestUnknown,
    NotFound,
    OciError,
    RangeNotSatisfiable,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from registry.events import PullEvent, publish
from registry.mirror import MIRROR_HEADER, Fetched
from registry.node import Node, get_node
from registry.ranges import ByteRange, Unsatisfiable, parse_range

logger = logging.getLogger("registry.access")

READ_METHODS = ("GET", "HEAD")


def _client_ip(request: HttpRequest) -> str:
    # X-Forwarded-For is deliberately ignored: behaviour never depends on the source (C19).
    return request.META.get("REMOTE_ADDR", "") or ""


def _headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for key, value in headers.items():
        response[key] = value
    return response


def _unauthorized(request: HttpRequest, node: Node) -> HttpResponse | None:
    """The 401 answer when basic auth is configured and the request lacks it."""
    auth: BasicAuth | None = node.extras.get("auth")  # type: ignore[assignment]
    if auth is None or auth.check(request.headers.get("Authorization")):
        return None
    resp = Unauthorized("authentication required").response(request.method == "HEAD")
    resp["WWW-Authenticate"] = 'Basic realm="spegel"'
    return resp


async def v2_root(request: HttpRequest) -> HttpResponse:
    if request.method not in READ_METHODS:
        resp = Unsupported("the registry is read-only", status=405).response()
        resp["Allow"] = "GET, HEAD"
        return resp
    denied = _unauthorized(request, get_node())
    if denied is not None:
        return denied
    resp = HttpResponse(b"" if request.method == "HEAD" else b"{}", content_type="application/json")
    resp["Content-Length"] = "2"
    resp["Docker-Distribution-API-Version"] = "registry/2.0"
    return resp


def _read_only(request: HttpRequest) -> HttpResponse | None:
    if request.method in READ_METHODS:
        return None
    resp = Unsupported("the registry port is read-only", status=405).response()
    resp["Allow"] = "GET, HEAD"
    return resp


async def readyz(request: HttpRequest) -> HttpResponse:
    if (refused := _read_only(request)) is not None:
        return refused
    node = get_node()
    ok = not node.draining and node.containerd_ok and await node.router.ready()
    return HttpResponse(
        b"ok" if ok else b"not ready", status=200 if ok else 503, content_type="text/plain"
    )


async def livez(request: HttpRequest) -> HttpResponse:
    if (refused := _read_only(request)) is not None:
        return refused
    return HttpResponse(b"ok", content_type="text/plain")


async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    return NotFound("not found").response(head=request.method == "HEAD")


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for targets no route can see (``*``, no leading slash): an OCI body too."""
    return NotFound("not found").response(head=request.method == "HEAD")


def server_error_handler(request: HttpRequest) -> HttpResponse:
    return InternalError("internal error").response(head=request.method == "HEAD")


async def distribution(request: HttpRequest, rest: str) -> HttpResponse:
    """``/v2/<name>/(manifests|blobs)/<reference>`` for GET and HEAD."""
    head = request.method == "HEAD"
    ns = request.GET.get("ns", "")
    try:
        if request.method not in READ_METHODS:
            resp = Unsupported("the registry is read-only", status=405).response(head)
            resp["Allow"] = "GET, HEAD"
            return resp
        node = get_node()
        denied = _unauthorized(request, node)
        if denied is not None:
            return denied
        ref = parse_path(request.path, ns)
        blocked = node.filters.reason_blocked(ref)
        if blocked:
            err = ManifestUnknown if ref.kind == "manifest" else BlobUnknown
            raise err(blocked)
        mirrored = request.headers.get(MIRROR_HEADER, "").lower() == "true"
        if ref.kind == "manifest":
            return await _manifest(request, node, ref, mirrored)
        return await _blob(request, node, ref, mirrored)
    except OciError as err:
        return err.response(head)
    except Exception as err:
        # Always an OCI body (never Django's HTML error page), so clients move on at once.
        if is_unavailable(err):
            logger.warning(
                "local store unavailable", extra={"path": request.path, "error": repr(err)[:200]}
            )
            return Unavailable("the local content store is unavailable").response(head)
        logger.exception("request failed", extra={"path": request.path})
        return InternalError("internal error").response(head)


def _ns_header(response: HttpResponse, ref: Reference) -> HttpResponse:
    if ref.registry and REGISTRY_HOST_RE.match(ref.registry):
        response["OCI-Namespace"] = ref.registry
    return response


async def _manifest(
    request: HttpRequest, node: Node, ref: Reference, mirrored: bool
) -> HttpResponse:
    head = request.method == "HEAD"
    digest = ref.digest or await node.store.resolve(ref.image_name)
    manifest = await node.store.manifest(digest) if digest else None
    if manifest is not None:
        if mirrored:
            _incoming(request, ref, 200, len(manifest.data))
        resp = HttpResponse(b"" if head else manifest.data)
        _headers(
            resp,
            {
                "Content-Type": manifest.media_type,
                "Content-Length": str(len(manifest.data)),
                "Docker-Content-Digest": manifest.digest,
            },
        )
        return _ns_header(resp, ref)
    if mirrored:
        _incoming(request, ref, 404, 0)
        raise ManifestUnknown("manifest unknown to this node", detail={"reference": ref.key})
    fetched = await node.mirror.manifest(ref, request.method or "GET")
    metrics.mirror_request(ref.registry, fetched is not None)
    if fetched is None:
        raise ManifestUnknown(
            "manifest could not be found on this node or any peer", detail={"reference": ref.key}
        )
    resp = HttpResponse(b"" if head else fetched.body)
    _headers(resp, fetched.headers)
    return _ns_header(resp, ref)


def _incoming(request: HttpRequest, ref: Reference, status: int, size: int) -> None:
    if request.method == "GET":
        publish(
            PullEvent(
                "incoming",
                _client_ip(request),
                ref.key,
                ref.kind,
                ref.registry,
                "GET",
                status,
                bytes=size,
            )
        )


async def _blob(request: HttpRequest, node: Node, ref: Reference, mirrored: bool) -> HttpResponse:
    head = request.method == "HEAD"
    range_header = request.headers.get("Range")
    stored = await node.store.blob(ref.digest)
    if stored is not None and stored.is_manifest:
        # Manifests live under /manifests/ only: the same 404 for HEAD and GET (C05).
        raise BlobUnknown("digest is a manifest, not a blob", detail={"digest": ref.digest})
    if stored is None:
        if mirrored:
            _incoming(request, ref, 404, 0)
            raise BlobUnknown("blob unknown to this node", detail={"digest": ref.digest})
        return await _mirror_blob(request, node, ref, range_header)
    size = stored.size
    try:
        byte_range = parse_range(range_header, size)
    except Unsatisfiable:
        return _unsatisfiable(request, ref, f"bytes */{size}")
    headers = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": ref.digest,
        "Accept-Ranges": "bytes",
    }
    offset, length, status = 0, size, 200
    if byte_range is not None:
        offset, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range(size)
    headers["Content-Length"] = str(length)
    if head:
        return _ns_header(_headers(HttpResponse(b"", status=status), headers), ref)
    body = _stream_local(node, ref, offset, length, request if mirrored else None)
    resp = StreamingHttpResponse(body, status=status)
    return _ns_header(_headers(resp, headers), ref)


async def _stream_local(
    node: Node, ref: Reference, offset: int, length: int, incoming: HttpRequest | None
) -> AsyncIterator[bytes]:
    sent = 0
    status = 200
    start = time.monotonic()
    throttle = node.extras.get("throttle") if incoming is not None else None
    try:
        async for chunk in node.store.read(ref.digest, offset, length):
            if throttle is not None:
                await throttle.consume(len(chunk))  # type: ignore[attr-defined]
            sent += len(chunk)
            yield chunk
    except Exception:
        status = 500
        logger.exception("reading a local blob failed", extra={"key": ref.key, "sent": sent})
        raise
    finally:
        if incoming is not None:
            publish(
                PullEvent(
                    "incoming",
                    _client_ip(incoming),
                    ref.key,
                    "blob",
                    ref.registry,
                    "GET",
                    status if sent == length else 499,
                    bytes=sent,
                    duration=time.monotonic() - start,
                )
            )


def _unsatisfiable(request: HttpRequest, ref: Reference, content_range: str) -> HttpResponse:
    resp = RangeNotSatisfiable("requested range not satisfiable", detail={"digest": ref.digest})
    out = resp.response(request.method == "HEAD")
    _headers(
        out,
        {
            "Content-Range": content_range,
            "Accept-Ranges": "bytes",
            "Docker-Content-Digest": ref.digest,
        },
    )
    return _ns_header(out, ref)


async def _mirror_blob(
    request: HttpRequest, node: Node, ref: Reference, range_header: str | None
) -> HttpResponse:
    method = request.method or "GET"
    fetched: Fetched | None = await node.mirror.blob(ref, method, None, range_header)
    metrics.mirror_request(ref.registry, fetched is not None)
    if fetched is None:
        raise BlobUnknown(
            "blob could not be found on this node or any peer", detail={"digest": ref.digest}
        )
    if fetched.status == 416:
        return _unsatisfiable(request, ref, fetched.headers["content-range"])
    if method == "HEAD" or fetched.stream is None:
        resp = HttpResponse(b"", status=fetched.status)
    else:
        resp = StreamingHttpResponse(fetched.stream, status=fetched.status)
    return _ns_header(_headers(resp, fetched.headers), ref)


__all__ = ["ByteRange", "distribution", "livez", "not_found", "readyz", "v2_root"]
