"""Keep the DHT in step with the local content store.

On start every image of the mirrored registries is advertised: its tag key (when tag
resolution allows) plus the index, manifest, config and layer digests that are really in the
store (never content that is missing, C20). Then containerd events keep it current: image
create/update/delete, content create (so layers are shared while a pull is still running) and
content delete. A broken image is logged and skipped; a lost event stream is re-subscribed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable

import grpc

from registry import metrics
from registry.containerd.client import ContainerdClient, ImageRecord
from registry.content import INDEX_TYPES, ContainerdStore, children_of, detect_media_type
from registry.distribution import DIGEST_RE, normalize_ns
from registry.filters import ReferenceFilter
from routing.router import Router

logger = logging.getLogger(__name__)

RESYNC_INTERVAL = 300.0
SOURCE_LABEL = "containerd.io/distribution.source."


def is_tag_name(name: str) -> bool:
    """``registry/repo:tag`` (not a bare digest record or a ``repo@digest`` record)."""
    if "@" in name or DIGEST_RE.match(name) or "/" not in name:
        return False
    last = name.rsplit("/", 1)[-1]
    return ":" in last


class StateTracker:
    def __init__(
        self,
        client: ContainerdClient,
        store: ContainerdStore,
        router: Router,
        filters: ReferenceFilter,
        on_health: object = None,
    ) -> None:
        self.client = client
        self.store = store
        self.router = router
        self.filters = filters
        self.on_health = on_health
        # image name -> keys it contributed; key -> number of images holding it
        self.image_keys: dict[str, set[str]] = {}
        self.advertised: set[str] = set()
        self.synced = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                # Subscribe before the full sync, so nothing between the two is missed.
                events = await self.client.subscribe(
                    ['topic~="^/(images|content)/"', f'namespace=="{self.client.namespace}"']
                )
                await self.full_sync()
                self._health(True)
                backoff = 0.2
                await self._follow(events)
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, OSError) as err:
                self._health(False)
                logger.warning(
                    "containerd event stream lost; re-subscribing",
                    extra={"error": str(err)[:200], "retry_in": backoff},
                )
            except Exception:
                self._health(False)
                logger.exception("state tracking failed; restarting")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def _health(self, ok: bool) -> None:
        if callable(self.on_health):
            self.on_health(ok)

    async def _follow(self, events: object) -> None:
        resync = asyncio.get_running_loop().time() + RESYNC_INTERVAL
        async for event in events:  # type: ignore[attr-defined]
            try:
                await self._handle(event.topic, event.name)
            except grpc.aio.AioRpcError:
                raise
            except Exception:
                logger.exception("handling a containerd event failed", extra={"topic": event.topic})
            if asyncio.get_running_loop().time() > resync:
                await self.full_sync()
                resync = asyncio.get_running_loop().time() + RESYNC_INTERVAL

    async def _handle(self, topic: str, name: str) -> None:
        if topic in ("/images/create", "/images/update"):
            image = await self.client.get_image(name)
            if (
                image is not None
                and is_tag_name(image.name)
                and self.filters.image_allowed(image.name)
            ):
                metrics.allow_registries({normalize_ns(image.name.partition("/")[0])})
                keys = await self.image_keys_for(image)
                old = self.image_keys.get(image.name, set())
                self.image_keys[image.name] = keys
                await self._apply(added=keys - old, maybe_removed=old - keys)
        elif topic == "/images/delete":
            old = self.image_keys.pop(name, set())
            await self._apply(added=set(), maybe_removed=old)
        elif topic == "/content/create":
            if name not in self.advertised and await self._content_allowed(name):
                await self._advertise([name])
        elif topic == "/content/delete":
            # Gone from the store means never advertised again, even if an image record
            # still references it (discarded or garbage-collected layers, C20).
            if name in self.advertised and await self.store.size(name) is None:
                for keys in self.image_keys.values():
                    keys.discard(name)
                await self._withdraw([name])
                self._update_gauges()

    async def _content_allowed(self, digest: str) -> bool:
        info = await self.client.info(digest)
        if info is None:
            return False
        if not self.filters.mirrored:
            return True
        sources = [k[len(SOURCE_LABEL) :] for k in info.labels if k.startswith(SOURCE_LABEL)]
        return any(self.filters.registry_allowed(normalize_ns(s)) for s in sources)

    def _held_by_image(self, key: str) -> bool:
        return any(key in keys for keys in self.image_keys.values())

    async def full_sync(self) -> None:
        images = await self.client.list_images()
        fresh: dict[str, set[str]] = {}
        for image in images:
            if not is_tag_name(image.name) or not self.filters.image_allowed(image.name):
                continue
            try:
                fresh[image.name] = await self.image_keys_for(image)
            except Exception:
                logger.exception(
                    "skipping an image that could not be walked", extra={"image": image.name}
                )
        wanted = set().union(*fresh.values()) if fresh else set()
        self.image_keys = fresh
        metrics.allow_registries({normalize_ns(n.partition("/")[0]) for n in fresh})
        await self._apply(added=wanted, maybe_removed=self.advertised - wanted)
        self.synced.set()
        logger.info(
            "advertised local content", extra={"images": len(fresh), "keys": len(self.advertised)}
        )

    async def image_keys_for(self, image: ImageRecord) -> set[str]:
        """Tag key plus every digest of the image that is present in the local store."""
        keys: set[str] = set()
        name = image.name
        registry = normalize_ns(name.partition("/")[0])
        tag = name.rsplit(":", 1)[1] if is_tag_name(name) else ""
        if tag and self.filters.resolve_tags and (tag != "latest" or self.filters.resolve_latest):
            keys.add(f"{registry}/{name.partition('/')[2]}")
        queue = [(image.target.digest, image.target.media_type)]
        seen: set[str] = set()
        while queue:
            digest, media_type = queue.pop()
            if digest in seen:
                continue
            seen.add(digest)
            size = await self.store.size(digest)
            if size is None:
                continue  # missing content is never advertised (C20)
            keys.add(digest)
            if media_type and media_type not in _WALKABLE and not media_type.endswith("+json"):
                continue
            if media_type and "config" in media_type:
                continue
            data = await self.store.read_all(digest)
            if data is None or detect_media_type(data, media_type or None) is None:
                continue
            queue.extend(children_of(data))
        return keys

    async def _apply(self, added: set[str], maybe_removed: set[str]) -> None:
        await self._advertise(sorted(added - self.advertised))
        gone = []
        for key in maybe_removed:
            if self._held_by_image(key):
                continue
            if DIGEST_RE.match(key) and await self.store.size(key) is not None:
                continue  # still in the store (another image or not yet collected)
            gone.append(key)
        await self._withdraw(sorted(gone))
        self._update_gauges()

    async def _advertise(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            await self.router.advertise(keys)
            self.advertised.update(keys)

    async def _withdraw(self, keys: Iterable[str]) -> None:
        keys = [k for k in keys if k in self.advertised]
        if keys:
            await self.router.withdraw(keys)
            self.advertised.difference_update(keys)

    def _update_gauges(self) -> None:
        tags: dict[str, int] = defaultdict(int)
        images: dict[str, int] = defaultdict(int)
        contents: dict[str, set[str]] = defaultdict(set)
        for name, keys in self.image_keys.items():
            registry = metrics.registry_label(normalize_ns(name.partition("/")[0]))
            images[registry] += 1
            tags[registry] += sum(1 for k in keys if not DIGEST_RE.match(k))
            contents[registry].update(k for k in keys if DIGEST_RE.match(k))
        metrics.advertised_image_tags.clear()
        metrics.advertised_image_digests.clear()
        metrics.advertised_content_digests.clear()
        for registry in images:
            metrics.advertised_image_tags.labels(registry).set(tags[registry])
            metrics.advertised_image_digests.labels(registry).set(images[registry])
            metrics.advertised_content_digests.labels(registry).set(len(contents[registry]))


_WALKABLE = INDEX_TYPES | {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
