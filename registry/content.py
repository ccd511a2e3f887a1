"""The content source boundary: what the registry views need from the node's store.

``ContainerdStore`` answers from containerd (metadata over gRPC, blob bytes from the content
directory when configured, otherwise streamed over gRPC). Tests run it against a real
containerd; unit tests of the layers above use small stand-ins of this protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from registry.containerd.client import ContainerdClient, ContainerdError, ImageRecord

MAX_MANIFEST_SIZE = 4 << 20  # containerd rejects larger manifests
READ_CHUNK = 1 << 20

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = frozenset({OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class BlobInfo:
    size: int
    is_manifest: bool


class ContentSource(Protocol):
    async def resolve(self, reference: str) -> str | None:
        """Digest an image reference (``registry/repo:tag``) points to, or None."""
        ...

    async def size(self, digest: str) -> int | None:
        """Size of a blob in the store, or None when absent."""
        ...

    async def blob(self, digest: str) -> BlobInfo | None:
        """Size of stored content and whether it is a manifest or index; None when absent."""
        ...

    async def manifest(self, digest: str) -> Manifest | None:
        """The manifest or index with this digest and its media type, or None."""
        ...

    def read(self, digest: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes of a blob from ``offset``."""
        ...


def is_unavailable(err: BaseException) -> bool:
    """True when ``err`` means the store could not be reached (containerd down, restarting)."""
    return isinstance(err, (grpc.aio.AioRpcError, ContainerdError, OSError))


def detect_media_type(data: bytes, declared: str | None = None) -> str | None:
    """A manifest's media type: its ``mediaType`` field, the referencing descriptor's type, or
    its structure (``manifests`` = index, ``config`` + ``layers`` = image manifest)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type in MANIFEST_TYPES:
        return media_type
    if declared in MANIFEST_TYPES:
        return declared
    if isinstance(doc.get("manifests"), list):
        return OCI_INDEX
    if isinstance(doc.get("config"), dict) and isinstance(doc.get("layers"), list):
        config_type = doc["config"].get("mediaType")
        return DOCKER_MANIFEST if config_type == DOCKER_CONFIG else OCI_MANIFEST
    return None


def children_of(data: bytes) -> list[tuple[str, str]]:
    """(digest, media type) of every descriptor a manifest or index refers to."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    descs = []
    for entry in doc.get("manifests") or []:
        descs.append(entry)
    if isinstance(doc.get("config"), dict):
        descs.append(doc["config"])
    descs.extend(doc.get("layers") or [])
    out = []
    for d in descs:
        if isinstance(d, dict) and isinstance(d.get("digest"), str):
            out.append((d["digest"], str(d.get("mediaType", ""))))
    return out


class _LRU(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: str, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class ContainerdStore:
    def __init__(self, client: ContainerdClient, content_path: str = "") -> None:
        self.client = client
        self.content_path = Path(content_path) if content_path else None
        self._types = _LRU(1024)

    def blob_path(self, digest: str) -> Path | None:
        if self.content_path is None:
            return None
        alg, _, hexpart = digest.partition(":")
        return self.content_path / "blobs" / alg / hexpart

    async def resolve(self, reference: str) -> str | None:
        image = await self.client.get_image(reference)
        return image.target.digest if image else None

    async def size(self, digest: str) -> int | None:
        info = await self.client.info(digest)
        return info.size if info else None

    async def blob(self, digest: str) -> BlobInfo | None:
        info = await self.client.info(digest)
        if info is None:
            return None
        # containerd labels manifests and indexes with the content they reference.
        manifest = any(k.startswith("containerd.io/gc.ref.content.") for k in info.labels)
        return BlobInfo(info.size, manifest)

    async def read_all(self, digest: str, limit: int = MAX_MANIFEST_SIZE) -> bytes | None:
        info = await self.client.info(digest)
        if info is None or info.size > limit:
            return None
        chunks = [chunk async for chunk in self.read(digest, 0, info.size)]
        return b"".join(chunks)

    async def manifest(self, digest: str) -> Manifest | None:
        data = await self.read_all(digest)
        if data is None:
            return None
        media_type = self._types.get(digest)
        if media_type is None:
            media_type = detect_media_type(data, await self._declared_type(digest))
            if media_type is None:
                return None
            self._types.put(digest, media_type)
        return Manifest(digest, media_type, data)

    async def _declared_type(self, digest: str) -> str | None:
        """The media type of an image record whose target is ``digest``, if any."""
        images: list[ImageRecord] = await self.client.list_images([f"target.digest=={digest}"])
        for image in images:
            if image.target.media_type:
                return image.target.media_type
        return None

    async def read(self, digest: str, offset: int, length: int) -> AsyncIterator[bytes]:
        path = self.blob_path(digest)
        if path is not None:
            async for chunk in read_file(path, offset, length):
                yield chunk
            return
        async for chunk in self.client.read(digest, offset, length):
            yield chunk


async def read_file(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    """Stream a file range in 1 MiB reads off the event loop, keeping one read ahead."""
    loop = asyncio.get_running_loop()
    fd = await loop.run_in_executor(None, os.open, str(path), os.O_RDONLY)
    pending: asyncio.Future[bytes] | None = None
    try:
        end = offset + length
        pos = offset

        def next_read(at: int) -> asyncio.Future[bytes] | None:
            if at >= end:
                return None
            return loop.run_in_executor(None, os.pread, fd, min(READ_CHUNK, end - at), at)

        pending = next_read(pos)
        while pending is not None:
            chunk = await pending
            pending = None
            if not chunk:
                raise OSError(f"unexpected end of {path.name} at byte {pos}")
            pos += len(chunk)
            pending = next_read(pos)
            yield chunk
    finally:
        if pending is not None:  # the reader went away: let the read in flight finish first
            await asyncio.gather(pending, return_exceptions=True)
        os.close(fd)
