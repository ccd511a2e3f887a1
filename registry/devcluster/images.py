"""Build small, real OCI images (layouts and archives) for tests, the demo and benchmarks.

Everything is generated locally from a seed: gzip'd tar layers, configs, manifests and
indexes, written as an OCI image layout and as a tar archive that ``ctr images import`` takes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Blob:
    media_type: str
    data: bytes | None = None  # small blobs in memory
    path: Path | None = None  # big blobs on disk
    digest: str = ""
    size: int = 0
    diff_id: str = ""  # layers: digest of the uncompressed tar

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def chunks(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            while block := fh.read(chunk):
                yield block


@dataclass
class Image:
    """An image: the top descriptor (index or manifest) plus every blob it needs."""

    name: str  # full reference, e.g. 127.0.0.1:5000/test/app:v1
    top: Blob
    blobs: dict[str, Blob] = field(default_factory=dict)
    manifests: list[Blob] = field(default_factory=list)
    configs: list[Blob] = field(default_factory=list)
    layers: list[Blob] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.top.digest

    @property
    def repository(self) -> str:
        ref = self.name.split("@")[0]
        _host, _, rest = ref.partition("/")
        return rest.rsplit(":", 1)[0] if ":" in rest.rsplit("/", 1)[-1] else rest

    @property
    def registry(self) -> str:
        return self.name.partition("/")[0]

    @property
    def tag(self) -> str:
        last = self.name.split("@")[0].rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"


class ImageBuilder:
    def __init__(self, workdir: Path, seed: int = 1) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)

    def _mem(self, media_type: str, data: bytes) -> Blob:
        return Blob(media_type, data=data, digest=sha256_digest(data), size=len(data))

    def layer(self, size: int, media_type: str = OCI_LAYER, name: str = "file.bin") -> Blob:
        """A gzip'd tar with one file of ``size`` pseudo-random (incompressible) bytes."""
        payload_seed = self.rng.getrandbits(64)
        target = self.workdir / f"layer-{payload_seed:x}.tar.gz"
        prng = random.Random(payload_seed)
        with open(target, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                hashing = _HashingWriter(gz)
                with tarfile.open(fileobj=hashing, mode="w|") as tar:
                    info = tarfile.TarInfo(name)
                    info.size = size
                    info.mode = 0o644
                    tar.addfile(info, _RandomReader(prng, size))
        digest = hashlib.sha256()
        with open(target, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        final = self.workdir / f"sha256-{digest.hexdigest()}"
        os.replace(target, final)
        blob = Blob(media_type, path=final, digest="sha256:" + digest.hexdigest())
        blob.diff_id = "sha256:" + hashing.sha.hexdigest()
        blob.size = final.stat().st_size
        return blob

    def config(self, arch: str, layers: list[Blob], media_type: str = OCI_CONFIG) -> Blob:
        cfg = {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/file.bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
        return self._mem(media_type, compact(cfg))

    def manifest(
        self,
        config: Blob,
        layers: list[Blob],
        media_type: str = OCI_MANIFEST,
        with_type: bool = True,
    ) -> Blob:
        body: dict[str, object] = {"schemaVersion": 2}
        if with_type:
            body["mediaType"] = media_type
        body["config"] = config.descriptor()
        body["layers"] = [layer.descriptor() for layer in layers]
        return self._mem(media_type, compact(body))

    def index(
        self, manifests: list[tuple[Blob, str]], media_type: str = OCI_INDEX, with_type: bool = True
    ) -> Blob:
        body: dict[str, object] = {"schemaVersion": 2}
        if with_type:
            body["mediaType"] = media_type
        body["manifests"] = [
            m.descriptor(platform={"architecture": arch, "os": "linux"}) for m, arch in manifests
        ]
        return self._mem(media_type, compact(body))

    def image(
        self,
        name: str,
        layer_sizes: list[int],
        platforms: list[str] | None = None,
        docker: bool = False,
        index_media_type_field: bool = True,
    ) -> Image:
        """One image; ``platforms`` (e.g. ["amd64", "arm64"]) makes it a multi-arch index."""
        lt, ct, mt, it = (
            (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_LIST)
            if docker
            else (OCI_LAYER, OCI_CONFIG, OCI_MANIFEST, OCI_INDEX)
        )
        archs = platforms or ["amd64"]
        img = Image(name=name, top=Blob(""))
        entries = []
        for arch in archs:
            layers = [
                self.layer(size, lt, name=f"file{i}.bin") for i, size in enumerate(layer_sizes)
            ]
            cfg = self.config(arch, layers, ct)
            man = self.manifest(cfg, layers, mt)
            img.layers += layers
            img.configs.append(cfg)
            img.manifests.append(man)
            entries.append((man, arch))
        if platforms:
            img.top = self.index(entries, it, with_type=index_media_type_field)
        else:
            img.top = img.manifests[0]
        for blob in [img.top, *img.manifests, *img.configs, *img.layers]:
            img.blobs[blob.digest] = blob
        return img


class _HashingWriter(io.RawIOBase):
    def __init__(self, inner: gzip.GzipFile) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.inner.write(data)
        return len(data)


class _RandomReader(io.RawIOBase):
    def __init__(self, prng: random.Random, size: int) -> None:
        self.prng = prng
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.prng.randbytes(n)


def write_oci_archive(images: list[Image], target: Path) -> Path:
    """Write an OCI image layout tar (``ctr images import`` format) holding ``images``."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    seen: set[str] = set()
    with tarfile.open(target, "w") as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add_bytes("oci-layout", compact({"imageLayoutVersion": "1.0.0"}))
        for img in images:
            index["manifests"].append(  # type: ignore[union-attr]
                img.top.descriptor(annotations={"io.containerd.image.name": img.name})
            )
            for blob in img.blobs.values():
                if blob.digest in seen:
                    continue
                seen.add(blob.digest)
                name = "blobs/sha256/" + blob.digest.split(":", 1)[1]
                if blob.data is not None:
                    add_bytes(name, blob.data)
                else:
                    assert blob.path is not None
                    tar.add(str(blob.path), arcname=name)
        add_bytes("index.json", compact(index))
    return target


def write_oci_layout(img: Image, target: Path, tag: str | None = None) -> Path:
    """Write ``img`` as an OCI image layout directory (for skopeo ``oci:`` sources)."""
    blobs_dir = target / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (target / "oci-layout").write_bytes(compact({"imageLayoutVersion": "1.0.0"}))
    for blob in img.blobs.values():
        dest = blobs_dir / blob.digest.split(":", 1)[1]
        if blob.data is not None:
            dest.write_bytes(blob.data)
        else:
            assert blob.path is not None
            if not dest.exists():
                os.link(blob.path, dest) if _same_fs(blob.path, dest) else dest.write_bytes(
                    blob.path.read_bytes()
                )
    annotations = {"org.opencontainers.image.ref.name": tag or img.tag}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [img.top.descriptor(annotations=annotations)],
    }
    (target / "index.json").write_bytes(compact(index))
    return target


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b.parent).st_dev
