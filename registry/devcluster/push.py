"""Push an :class:`Image` to a registry over the OCI distribution API (monolithic uploads)."""

from __future__ import annotations

import httpx

from registry.devcluster.images import Blob, Image


def push_image(base_url: str, image: Image, repository: str | None = None, tag: str | None = None):
    """Upload every blob, then child manifests by digest, then the top by tag."""
    repo = repository or image.repository
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for blob in [*image.layers, *image.configs]:
            _push_blob(client, repo, blob)
        children = image.manifests if image.top not in image.manifests else []
        for manifest in children:
            _put_manifest(client, repo, manifest, manifest.digest)
        _put_manifest(client, repo, image.top, tag or image.tag)


def _push_blob(client: httpx.Client, repo: str, blob: Blob) -> None:
    if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
        return
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    start.raise_for_status()
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    resp = client.put(
        f"{location}{sep}digest={blob.digest}",
        content=blob.chunks(),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
    )
    resp.raise_for_status()


def _put_manifest(client: httpx.Client, repo: str, blob: Blob, ref: str) -> None:
    assert blob.data is not None
    resp = client.put(
        f"/v2/{repo}/manifests/{ref}",
        content=blob.data,
        headers={"Content-Type": blob.media_type},
    )
    resp.raise_for_status()
