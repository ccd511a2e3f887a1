"""An asyncio client for containerd's gRPC API (the few calls the registry needs).

Every call carries the ``containerd-namespace`` metadata. Stubs are generated from the proto
subset in ``proto/`` (see ``generate.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2

from registry.containerd.gen.containerd.events import content_pb2 as content_events
from registry.containerd.gen.containerd.services.content.v1 import content_pb2, content_pb2_grpc
from registry.containerd.gen.containerd.services.events.v1 import events_pb2, events_pb2_grpc
from registry.containerd.gen.containerd.services.images.v1 import images_pb2, images_pb2_grpc
from registry.containerd.gen.containerd.services.version.v1 import version_pb2_grpc
from registry.containerd.gen.runtime.v1 import api_pb2, api_pb2_grpc

READ_CHUNK = 1 << 20
_MAX_MESSAGE = 16 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class ImageRecord:
    name: str
    target: Descriptor
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentInfo:
    digest: str
    size: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """A containerd event. ``name`` is the image name or content digest it is about."""

    topic: str
    namespace: str
    name: str


class ContainerdError(Exception):
    """containerd could not be reached or answered with an unexpected error."""


def _image(msg: images_pb2.Image) -> ImageRecord:
    target = Descriptor(msg.target.media_type, msg.target.digest, msg.target.size)
    return ImageRecord(msg.name, target, dict(msg.labels))


def decode_event(env: events_pb2.Envelope) -> Event:
    # containerd's Any type_url is the bare message name (no type.googleapis.com/ prefix).
    type_url = env.event.type_url.rsplit("/", 1)[-1]
    decoders: dict[str, Any] = {
        "containerd.services.images.v1.ImageCreate": images_pb2.ImageCreate,
        "containerd.services.images.v1.ImageUpdate": images_pb2.ImageUpdate,
        "containerd.services.images.v1.ImageDelete": images_pb2.ImageDelete,
        "containerd.events.ContentCreate": content_events.ContentCreate,
        "containerd.events.ContentDelete": content_events.ContentDelete,
    }
    name = ""
    decoder = decoders.get(type_url)
    if decoder is not None:
        payload = decoder.FromString(env.event.value)
        name = getattr(payload, "name", "") or getattr(payload, "digest", "")
    return Event(env.topic, env.namespace, name)


async def _events(call: Any) -> AsyncIterator[Event]:
    try:
        async for env in call:
            yield decode_event(env)
    finally:
        call.cancel()


class ContainerdClient:
    def __init__(self, sock: str, namespace: str = "k8s.io") -> None:
        self.sock = sock
        self.namespace = namespace
        self._metadata = (("containerd-namespace", namespace),)
        target = sock if sock.startswith("unix:") else f"unix://{sock}"
        self.channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.default_authority", "localhost"),
            ],
        )
        self.images = images_pb2_grpc.ImagesStub(self.channel)
        self.content = content_pb2_grpc.ContentStub(self.channel)
        self.events = events_pb2_grpc.EventsStub(self.channel)
        self.version_stub = version_pb2_grpc.VersionStub(self.channel)
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.cri_images = api_pb2_grpc.ImageServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def version(self, timeout: float = 5.0) -> str:
        resp = await self.version_stub.Version(empty_pb2.Empty(), timeout=timeout)
        return resp.version

    async def list_images(self, filters: list[str] | None = None) -> list[ImageRecord]:
        req = images_pb2.ListImagesRequest(filters=filters or [])
        resp = await self.images.List(req, metadata=self._metadata, timeout=30)
        return [_image(img) for img in resp.images]

    async def get_image(self, name: str) -> ImageRecord | None:
        try:
            resp = await self.images.Get(
                images_pb2.GetImageRequest(name=name), metadata=self._metadata, timeout=10
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return _image(resp.image)

    async def info(self, digest: str) -> ContentInfo | None:
        try:
            resp = await self.content.Info(
                content_pb2.InfoRequest(digest=digest), metadata=self._metadata, timeout=10
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return ContentInfo(resp.info.digest, resp.info.size, dict(resp.info.labels))

    async def list_content(self, filters: list[str] | None = None) -> list[ContentInfo]:
        req = content_pb2.ListContentRequest(filters=filters or [])
        out: list[ContentInfo] = []
        async for resp in self.content.List(req, metadata=self._metadata, timeout=60):
            out.extend(ContentInfo(i.digest, i.size, dict(i.labels)) for i in resp.info)
        return out

    async def read(self, digest: str, offset: int = 0, size: int = 0) -> AsyncIterator[bytes]:
        """Stream ``size`` bytes (0 = to the end) of a blob from ``offset``."""
        req = content_pb2.ReadContentRequest(digest=digest, offset=offset, size=size)
        call = self.content.Read(req, metadata=self._metadata)
        try:
            async for resp in call:
                if resp.data:
                    yield resp.data
        finally:
            call.cancel()

    async def subscribe(self, filters: list[str]) -> AsyncIterator[Event]:
        """Open the event stream now (events from here on are kept), iterate it later.

        The RPC is sent when the call is created; containerd sends no headers until the first
        event, so there is nothing to wait for here.
        """
        call = self.events.Subscribe(
            events_pb2.SubscribeRequest(filters=filters), metadata=self._metadata
        )
        await asyncio.sleep(0)
        return _events(call)

    async def cri_status(self, timeout: float = 10.0) -> dict[str, Any]:
        """CRI ``runtime.v1`` Status(verbose) ``info`` with JSON values decoded."""
        resp = await self.runtime.Status(api_pb2.StatusRequest(verbose=True), timeout=timeout)
        info: dict[str, Any] = {}
        for key, value in resp.info.items():
            try:
                info[key] = json.loads(value)
            except ValueError:
                info[key] = value
        return info

    async def cri_pull(self, image: str, timeout: float = 120.0) -> str:
        """Pull ``image`` the way the kubelet does (CRI ``ImageService/PullImage``)."""
        req = api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image))
        resp = await self.cri_images.PullImage(req, timeout=timeout)
        return resp.image_ref
