"""Image references as an operator types them: ``[registry/]repository[:tag][@digest]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        return self.digest or self.tag

    @property
    def key(self) -> str:
        """The DHT key of the image: the digest, or ``<registry>/<repo>:<tag>``."""
        return self.digest or f"{self.registry}/{self.repository}:{self.tag}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(text: str) -> ImageRef:
    """Parse an image reference with Docker's defaults (docker.io, library/, latest)."""
    raw = text.strip()
    if not raw:
        raise ValueError("image reference is empty")
    name, _, digest = raw.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise ValueError(f"invalid digest {digest!r}")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG_RE.match(tag):
            raise ValueError(f"invalid tag {tag!r}")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, name
        if "/" not in repository:
            repository = f"library/{repository}"
    if not _REPO_RE.match(repository):
        raise ValueError(f"invalid repository {repository!r}")
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)
