"""Push pickled images to a registry: ``python -m bench.nspush IMAGES.pickle BASE_URL``.

Run inside the upstream's namespace (against its own 127.0.0.1), so the push never crosses
the shaped link and nothing in the root namespace talks to a namespace address.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from registry.devcluster.push import push_image


def main(path: str, base_url: str) -> None:
    images = pickle.loads(Path(path).read_bytes())  # our own file, written by bench.case_e2e
    for image in images:
        push_image(base_url, image)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
