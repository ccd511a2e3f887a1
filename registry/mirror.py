"""Fetch content this node lacks from peers that the router names.

Only hosts returned by the router are contacted, only on the cluster-wide registry port and
only on a path rebuilt from the already validated reference: nothing from the request
(``ns``, headers) chooses where we connect. Every request to a peer carries
``X-Spegel-Mirrored: true``, so the peer serves from its own store and never forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from registry import peerhttp
from registry.distribution import Reference
from registry.events import NOT_FOUND_PEER, PullEvent, publish
from registry.peerhttp import PeerHTTPError, PeerResponse
from registry.ranges import ByteRange, Unsatisfiable, parse_range
from routing.router import Peer, Router

logger = logging.getLogger(__name__)

MIRROR_HEADER = "X-Spegel-Mirrored"
MAX_MANIFEST_SIZE = 4 << 20
_UNSATISFIED_RE = re.compile(r"^bytes \*/\d+$")
_PASS_HEADERS = ("content-type", "docker-content-digest")
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def answers_range(range_header: str | None, content_range: str, length: int) -> bool:
    """True when a peer's 206 is exactly the range we asked for (end clamped to the size).

    A 206 we did not ask for, or for other bytes, would be relayed unverified: a partial body
    cannot be checked against the digest.
    """
    match = _CONTENT_RANGE_RE.match(content_range.strip())
    if not range_header or not match:
        return False
    start, end, size = (int(g) for g in match.groups())
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        return False
    return wanted is not None and (wanted.start, wanted.end, wanted.length) == (
        start,
        end,
        length,
    )


class MirrorAborted(Exception):
    """A proxied body could not be completed: the client connection must be aborted."""


@dataclass
class Fetched:
    """A peer's answer, ready to send to our client."""

    status: int
    headers: dict[str, str]
    peer: Peer
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


@dataclass
class _PeerQueue:
    """Peers found by a background lookup (bounded by the resolve timeout), consumed in order.

    The lookup's deadline bounds only the search; proxying to a peer found in time is not cut
    short by it.
    """

    router: Router
    key: str
    count: int
    timeout: float
    queue: asyncio.Queue[Peer | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    found: int = 0
    exhausted: bool = False

    def start(self) -> _PeerQueue:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                async for peer in self.router.resolve(self.key, self.count, self.timeout):
                    self.found += 1
                    self.queue.put_nowait(peer)
        except TimeoutError:
            pass
        except Exception:
            logger.exception("peer lookup failed", extra={"key": self.key})
        finally:
            self.queue.put_nowait(None)

    async def next(self) -> Peer | None:
        if self.exhausted:
            return None
        peer = await self.queue.get()
        if peer is None:
            self.exhausted = True
        return peer

    def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class Mirror:
    def __init__(
        self,
        router: Router,
        registry_port: int,
        resolve_timeout: float = 0.02,
        resolve_retries: int = 3,
        manifest_timeout: float = 3.0,
        connect_timeout: float = 0.5,
        idle_timeout: float = 30.0,
        on_result: Callable[[str, bool], None] | None = None,
        local_address: str | None = None,
        authorization: str | None = None,
    ) -> None:
        self.router = router
        self.registry_port = registry_port
        self.resolve_timeout = resolve_timeout
        self.resolve_retries = resolve_retries
        self.manifest_timeout = manifest_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.on_result = on_result
        self.local_address = local_address
        self.bad_peers: dict[str, float] = {}
        self.base_headers = {MIRROR_HEADER: "true"}
        if authorization:
            self.base_headers["Authorization"] = authorization
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        self.client = httpx.AsyncClient(
            follow_redirects=False,  # a peer's redirect is not content: rejected
            # Connect from our own registry address, so peers see which node is asking.
            transport=httpx.AsyncHTTPTransport(limits=limits, local_address=local_address),
            trust_env=False,
        )

    async def close(self) -> None:
        await self.client.aclose()

    def _target(self, ref: Reference) -> str:
        """The request target on a peer, rebuilt from the validated reference only."""
        path = "manifests" if ref.kind == "manifest" else "blobs"
        target = f"/v2/{ref.name}/{path}/{ref.digest or ref.tag}"
        return target + (f"?ns={quote(ref.registry, safe='')}" if ref.registry else "")

    def _url(self, peer: Peer, ref: Reference) -> str:
        return peer.url(self.registry_port) + self._target(ref)

    def _mark_bad(self, peer: Peer, why: str) -> None:
        logger.warning("peer answered wrong content", extra={"peer": peer.host, "reason": why})
        self.bad_peers[peer.peer_id] = time.monotonic() + 60.0

    def _is_bad(self, peer: Peer) -> bool:
        until = self.bad_peers.get(peer.peer_id)
        return until is not None and until > time.monotonic()

    def _log_success(
        self, ref: Reference, peer: Peer, method: str, size: int, start: float
    ) -> None:
        logger.info(
            "mirrored",
            extra={
                "key": ref.key,
                "kind": ref.kind,
                "method": method,
                "peer": peer.host,
                "bytes": size,
                "duration": round(time.monotonic() - start, 6),
            },
        )

    def _lookup(self, ref: Reference) -> _PeerQueue:
        return _PeerQueue(self.router, ref.key, self.resolve_retries, self.resolve_timeout).start()

    def _event(self, ref: Reference, peer: str, method: str, status: int, **kw: float) -> None:
        publish(PullEvent("outgoing", peer, ref.key, ref.kind, ref.registry, method, status, **kw))

    async def manifest(self, ref: Reference, method: str) -> Fetched | None:
        """A manifest (GET or HEAD) from the first peer that has it, within the budget."""
        start = time.monotonic()
        peers = self._lookup(ref)
        tried = 0
        try:
            async with asyncio.timeout(self.manifest_timeout):
                while (peer := await peers.next()) is not None:
                    if self._is_bad(peer):
                        continue
                    tried += 1
                    self._event(ref, peer.host, method, 0)
                    result = await self._try_manifest(peer, ref, method)
                    status = result.status if result else 404
                    self._event(ref, peer.host, method, status, duration=time.monotonic() - start)
                    if result is not None:
                        self._log_success(ref, peer, method, len(result.body), start)
                        return result
        except TimeoutError:
            logger.info("manifest mirror budget exhausted", extra={"key": ref.key})
        finally:
            peers.close()
        if not tried:
            self._event(ref, NOT_FOUND_PEER, method, 404)
        return None

    async def _try_manifest(self, peer: Peer, ref: Reference, method: str) -> Fetched | None:
        timeout = httpx.Timeout(self.manifest_timeout, connect=self.connect_timeout)
        request = self.client.build_request(
            method, self._url(peer, ref), headers=self.base_headers, timeout=timeout
        )
        try:
            # Headers first: a peer announcing a huge "manifest" is refused before its body
            # is read into memory.
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as err:
            logger.info("peer request failed", extra={"peer": peer.host, "error": repr(err)})
            return None
        try:
            return await self._read_manifest(peer, ref, method, resp)
        except httpx.HTTPError as err:
            logger.info("peer request failed", extra={"peer": peer.host, "error": repr(err)})
            return None
        finally:
            await resp.aclose()

    async def _read_manifest(
        self, peer: Peer, ref: Reference, method: str, resp: httpx.Response
    ) -> Fetched | None:
        if resp.status_code != 200:
            return None
        digest = resp.headers.get("docker-content-digest", "")
        length = resp.headers.get("content-length", "")
        if not digest or not length.isdigit() or int(length) > MAX_MANIFEST_SIZE:
            self._mark_bad(peer, "manifest answer without digest or valid length")
            return None
        if ref.digest and digest != ref.digest:
            self._mark_bad(peer, "manifest digest header differs from the requested digest")
            return None
        headers = {k: resp.headers[k] for k in _PASS_HEADERS if k in resp.headers}
        headers["content-length"] = length
        if method == "HEAD":
            return Fetched(200, headers, peer)
        body = await resp.aread()
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if len(body) != int(length) or actual != digest:
            self._mark_bad(peer, "manifest body does not match its digest")
            return None
        return Fetched(200, headers, peer, body=body)

    async def blob(
        self, ref: Reference, method: str, byte_range: ByteRange | None, range_header: str | None
    ) -> Fetched | None:
        """A blob from peers: headers now, body streamed, resumed on another peer on failure."""
        start = time.monotonic()
        peers = self._lookup(ref)
        tried = 0
        try:
            while (peer := await peers.next()) is not None:
                if self._is_bad(peer):
                    continue
                tried += 1
                self._event(ref, peer.host, method, 0)
                result = await self._open_blob(peer, ref, method, range_header)
                if result is None:
                    self._event(ref, peer.host, method, 404, duration=time.monotonic() - start)
                    continue
                if isinstance(result, Fetched) and result.status == 416:
                    peers.close()
                    return result
                if method == "HEAD":
                    self._event(ref, peer.host, method, 200, duration=time.monotonic() - start)
                    self._log_success(ref, peer, method, 0, start)
                    peers.close()
                    return result
                resp, fetched = result
                fetched.stream = self._relay(ref, peers, peer, resp, fetched, start)
                return fetched
        except BaseException:
            peers.close()
            raise
        peers.close()
        if not tried:
            self._event(ref, NOT_FOUND_PEER, method, 404)
        return None

    async def _open_blob(
        self, peer: Peer, ref: Reference, method: str, range_header: str | None
    ) -> Fetched | tuple[PeerResponse, Fetched] | None:
        headers = dict(self.base_headers)
        if range_header:
            headers["Range"] = range_header
        try:
            # Headers must come quickly (a peer that accepts and never answers is skipped);
            # the body may then take as long as it keeps flowing (idle timeout only).
            resp = await peerhttp.request(
                method,
                peer.host,
                self.registry_port,
                self._target(ref),
                headers,
                local_address=self.local_address,
                connect_timeout=self.connect_timeout,
                header_timeout=self.manifest_timeout,
                idle_timeout=self.idle_timeout,
            )
        except PeerHTTPError as err:
            logger.info("peer request failed", extra={"peer": peer.host, "error": str(err)})
            return None
        if resp.status == 416 and range_header:
            # The peer has the blob but not that range: the same answer as a local 416.
            content_range = resp.headers.get("content-range", "")
            await resp.aclose()
            if _UNSATISFIED_RE.match(content_range):
                return Fetched(416, {"content-range": content_range}, peer)
            return None
        ok = resp.status in (200, 206)
        digest = resp.headers.get("docker-content-digest", ref.digest)
        length = resp.headers.get("content-length", "")
        chunked = "transfer-encoding" in resp.headers
        if not ok or digest != ref.digest or not length.isdigit() or chunked:
            if ok:
                self._mark_bad(peer, "blob answer with a wrong digest header or no length")
            await resp.aclose()
            return None
        out = {
            "content-length": length,
            "docker-content-digest": ref.digest,
            "content-type": "application/octet-stream",
            "accept-ranges": "bytes",
        }
        if resp.status == 206:
            if not answers_range(range_header, resp.headers.get("content-range", ""), int(length)):
                self._mark_bad(peer, "partial answer for a range we did not ask for")
                await resp.aclose()
                return None
            out["content-range"] = resp.headers["content-range"]
        fetched = Fetched(resp.status, out, peer)
        if method == "HEAD":
            await resp.aclose()
            return fetched
        return resp, fetched

    async def _relay(
        self,
        ref: Reference,
        peers: _PeerQueue,
        peer: Peer,
        resp: PeerResponse,
        fetched: Fetched,
        start: float,
    ) -> AsyncIterator[bytes]:
        """Stream the body; on a peer failure resume from the exact offset on the next peer.

        A full (200) body is hashed as it streams and must match the digest. If no peer can
        continue, :class:`MirrorAborted` is raised so the server aborts the connection instead
        of ending a short body cleanly.
        """
        total = int(fetched.headers["content-length"])
        first = 0
        if fetched.status == 206:
            first = int(fetched.headers["content-range"].split()[1].split("-")[0])
        sha = hashlib.sha256() if fetched.status == 200 else None
        sent = 0
        # The last chunk is held back until the digest is verified: a client must never see
        # a complete body of wrong bytes (it would end exactly at Content-Length).
        held = b""
        current: PeerResponse | None = resp
        try:
            while True:
                assert current is not None
                try:
                    async for chunk in current.body(total - sent):
                        sent += len(chunk)
                        if sha is not None:
                            sha.update(chunk)
                        if held:
                            yield held
                        held = chunk
                    break
                except PeerHTTPError as err:
                    logger.warning(
                        "peer failed mid-blob, resuming",
                        extra={"peer": peer.host, "key": ref.key, "offset": first + sent},
                    )
                    self._event(ref, peer.host, "GET", 502, bytes=sent)
                    await current.aclose()
                    current = None
                    current, peer = await self._resume(
                        ref, peers, peer, first + sent, first + total
                    )
                    if current is None:
                        raise MirrorAborted(f"no peer could continue {ref.key} at {sent}") from err
            if sha is not None and "sha256:" + sha.hexdigest() != ref.digest:
                self._mark_bad(peer, "blob body does not match its digest")
                raise MirrorAborted(f"digest mismatch for {ref.key}")
            if held:
                yield held
            self._log_success(ref, peer, "GET", sent, start)
            self._event(
                ref, peer.host, "GET", fetched.status, bytes=sent, duration=time.monotonic() - start
            )
            if self.on_result:
                self.on_result(ref.registry, True)
        finally:
            if current is not None:
                await current.aclose()
            peers.close()

    async def _resume(
        self, ref: Reference, peers: _PeerQueue, failed: Peer, offset: int, end: int
    ) -> tuple[PeerResponse | None, Peer]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(self.resolve_timeout, 1.0)):
                while (peer := await peers.next()) is not None:
                    if peer.peer_id == failed.peer_id or self._is_bad(peer):
                        continue
                    header = f"bytes={offset}-{end - 1}"
                    opened = await self._open_blob(peer, ref, "GET", header)
                    if not isinstance(opened, tuple):
                        continue
                    resp, fetched = opened
                    expected = f"bytes {offset}-{end - 1}/"
                    if fetched.status != 206 or not fetched.headers["content-range"].startswith(
                        expected
                    ):
                        await resp.aclose()
                        continue
                    return resp, peer
        return None, failed
