"""The distribution-spec path and reference grammar: parse before any store or peer lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from registry.errors import BlobUnknown, DigestInvalid, ManifestUnknown, NameInvalid, NameUnknown

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_LOOKS_LIKE_DIGEST = re.compile(r"^[A-Za-z0-9+._-]+:")
MAX_NAME = 255
# What may be echoed in OCI-Namespace: a host[:port] (the ns value comes from the client and a
# control character in a response header makes the server drop the connection unanswered).
REGISTRY_HOST_RE = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9._-]{0,252}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)

# containerd sends the Docker Hub namespace as docker.io; other spellings mean the same.
_NS_ALIASES = {"index.docker.io": "docker.io", "registry-1.docker.io": "docker.io"}


@dataclass(frozen=True)
class Reference:
    kind: Literal["manifest", "blob"]
    name: str
    registry: str  # the ns query parameter (normalised), "" when absent
    tag: str = ""
    digest: str = ""

    @property
    def key(self) -> str:
        """The routing key: the digest, or ``<registry>/<name>:<tag>``."""
        return self.digest or f"{self.registry}/{self.name}:{self.tag}"

    @property
    def image_name(self) -> str:
        return f"{self.registry}/{self.name}:{self.tag}"


def normalize_ns(ns: str) -> str:
    ns = ns.strip().lower()
    return _NS_ALIASES.get(ns, ns)


def parse_path(path: str, ns: str) -> Reference:
    """Parse ``/v2/<name>/(manifests|blobs)/<ref>`` into a :class:`Reference`.

    Raises an :class:`OciError` naming what is wrong; never returns a partial reference.
    """
    if not path.startswith("/v2/"):
        raise NameInvalid("path must start with /v2/")
    rest = path[len("/v2/") :]
    # The last endpoint marker wins: a repository may have a component named "blobs".
    at_manifest, at_blob = rest.rfind("/manifests/"), rest.rfind("/blobs/")
    if at_manifest < 0 and at_blob < 0:
        raise NameUnknown("unknown endpoint: expected /v2/<name>/manifests/<ref> or blobs/<digest>")
    kind = "manifest" if at_manifest > at_blob else "blob"
    marker = "/manifests/" if kind == "manifest" else "/blobs/"
    name, _, ref = rest.rpartition(marker)
    if not name or len(name) > MAX_NAME or not NAME_RE.match(name):
        raise NameInvalid("invalid repository name", detail={"name": name[:MAX_NAME]})
    registry = normalize_ns(ns)
    if kind == "blob":
        if not DIGEST_RE.match(ref):
            if _LOOKS_LIKE_DIGEST.match(ref):
                raise DigestInvalid("invalid digest", detail={"digest": ref[:200]})
            raise BlobUnknown("blobs are addressed by digest", detail={"reference": ref[:200]})
        return Reference("blob", name, registry, digest=ref)
    if DIGEST_RE.match(ref):
        return Reference("manifest", name, registry, digest=ref)
    if _LOOKS_LIKE_DIGEST.match(ref):
        raise DigestInvalid("invalid digest", detail={"digest": ref[:200]})
    if not TAG_RE.match(ref):
        raise ManifestUnknown("invalid tag", detail={"tag": ref[:200]})
    if not registry:
        raise NameUnknown(
            "the registry (ns query parameter) must be set for tag references",
            detail={"tag": ref},
        )
    return Reference("manifest", name, registry, tag=ref)
