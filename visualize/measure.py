"""Measure how an image already known to the cluster is found and pulled.

For each key of the image (its reference, its manifests, config and layers) the DHT lookup is
timed through the injected ``resolve``; each manifest and blob is then pulled through the local
registry (so through the mirror, exactly as containerd would) and timed. The peer that served a
blob is the one the mirror reported to the visualize store. Everything is bounded by one
deadline and a cap on blobs; nothing is pulled unless some peer holds the image.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from visualize.hooks import PeerTiming, Resolver
from visualize.reference import ImageRef, parse_image
from visualize.store import MemoryEventStore

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


@dataclass
class Lookup:
    key: str
    peers: list[PeerTiming]
    duration: float
    error: str = ""


@dataclass
class Pull:
    key: str
    kind: str  # manifest | config | layer
    status: int = 0
    size: int = 0
    duration: float = 0.0
    peer: str = "unknown"
    error: str = ""

    @property
    def throughput(self) -> float:
        """Bytes per second."""
        return self.size / self.duration if self.duration > 0 else 0.0


@dataclass
class Measurement:
    image: str
    lookups: list[Lookup] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    error: str = ""
    timed_out: bool = False
    duration: float = 0.0

    @property
    def pull_bytes(self) -> int:
        return sum(p.size for p in self.pulls)

    @property
    def pull_duration(self) -> float:
        return sum(p.duration for p in self.pulls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "error": self.error,
            "timed_out": self.timed_out,
            "duration": self.duration,
            "lookups": [
                {
                    "key": lk.key,
                    "peers": [list(p) for p in lk.peers],
                    "duration": lk.duration,
                    "error": lk.error,
                }
                for lk in self.lookups
            ],
            "pulls": [
                {
                    "key": p.key,
                    "kind": p.kind,
                    "status": p.status,
                    "size": p.size,
                    "duration": p.duration,
                    "throughput": p.throughput,
                    "peer": p.peer,
                    "error": p.error,
                }
                for p in self.pulls
            ],
        }


class Measurer:
    def __init__(
        self,
        resolve: Resolver,
        registry_url: str,
        *,
        store: MemoryEventStore | None = None,
        timeout: float = 30.0,
        max_blobs: int = 64,
        platform: tuple[str, str] = ("linux", "amd64"),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.resolve = resolve
        self.registry_url = registry_url.rstrip("/")
        self.store = store
        self.timeout = timeout
        self.max_blobs = max_blobs
        self.platform = platform
        self.transport = transport

    async def measure(self, image: str) -> Measurement:
        result = Measurement(image=image)
        start = time.monotonic()
        try:
            ref = parse_image(image)
        except ValueError as exc:
            result.error = str(exc)
            return result
        result.image = str(ref)
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as client,
            ):
                await self._measure(ref, client, result)
        except TimeoutError:
            result.timed_out = True
            result.error = f"stopped after {self.timeout:g}s"
        result.duration = time.monotonic() - start
        return result

    async def _measure(self, ref: ImageRef, client: httpx.AsyncClient, result: Measurement) -> None:
        first = await self._lookup(ref.key, result)
        if not first.peers:
            result.error = first.error or "no peer in the cluster has this image"
            return
        pull, body = await self._get(client, ref, "manifests", ref.reference, "manifest", ref.key)
        result.pulls.append(pull)
        manifest = _json(body)
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            child = self._pick_platform(manifest)
            if child is None:
                result.error = "index has no manifests"
                return
            await self._lookup(child, result)
            pull, body = await self._get(client, ref, "manifests", child, "manifest", child)
            result.pulls.append(pull)
            manifest = _json(body)
        blobs: list[tuple[str, str]] = []
        if isinstance(manifest.get("config"), dict):
            blobs.append(("config", str(manifest["config"].get("digest", ""))))
        blobs += [("layer", str(layer.get("digest", ""))) for layer in manifest.get("layers", [])]
        for kind, digest in blobs[: self.max_blobs]:
            if not digest:
                continue
            await self._lookup(digest, result)
            pull, _ = await self._get(client, ref, "blobs", digest, kind, digest, keep_body=False)
            result.pulls.append(pull)
        if len(blobs) > self.max_blobs:
            result.error = f"measured the first {self.max_blobs} of {len(blobs)} blobs"

    async def _lookup(self, key: str, result: Measurement) -> Lookup:
        start = time.monotonic()
        try:
            found = self.resolve(key)
            if inspect.isawaitable(found):
                found = await found
            lookup = Lookup(key, [(str(p), float(s)) for p, s in found], time.monotonic() - start)
        except Exception as exc:
            lookup = Lookup(key, [], time.monotonic() - start, f"lookup failed: {exc}")
        result.lookups.append(lookup)
        return lookup

    async def _get(
        self,
        client: httpx.AsyncClient,
        ref: ImageRef,
        what: str,
        reference: str,
        kind: str,
        key: str,
        keep_body: bool = True,
    ) -> tuple[Pull, bytes]:
        url = f"{self.registry_url}/v2/{ref.repository}/{what}/{reference}"
        headers = {"Accept": MANIFEST_ACCEPT} if what == "manifests" else {}
        pull = Pull(key=key, kind=kind)
        chunks: list[bytes] = []
        wall = time.time()
        start = time.monotonic()
        try:
            async with client.stream(
                "GET", url, params={"ns": ref.registry}, headers=headers
            ) as response:
                pull.status = response.status_code
                async for chunk in response.aiter_raw():
                    pull.size += len(chunk)
                    if keep_body:
                        chunks.append(chunk)
                if response.status_code != 200:
                    pull.error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            pull.error = f"{type(exc).__name__}: {exc}"
        pull.duration = time.monotonic() - start
        pull.peer = self._served_by(key, wall)
        return pull, b"".join(chunks)

    def _served_by(self, key: str, since: float) -> str:
        edge = self.store.get(key) if self.store is not None else None
        if edge is not None and edge.direction == "outgoing" and edge.time >= since - 1.0:
            return edge.peer
        return "unknown"

    def _pick_platform(self, index: dict[str, Any]) -> str | None:
        manifests = [m for m in index.get("manifests", []) if isinstance(m, dict)]
        os_, arch = self.platform
        for entry in manifests:
            platform = entry.get("platform") or {}
            if platform.get("os") == os_ and platform.get("architecture") == arch:
                return str(entry.get("digest"))
        return str(manifests[0].get("digest")) if manifests else None


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
