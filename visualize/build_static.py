"""Copy the front-end libraries installed by ``npm ci`` into static files, then collect them.

Run by ``make static`` after ``npm ci`` in ``visualize/``. The page loads these files from
the admin port: clusters are often air-gapped, so nothing comes from a CDN at runtime.
``--no-collect`` only vendors (tests use that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
VENDOR = HERE / "static" / "visualize" / "vendor"

# package -> files copied from it (the UMD bundle is self-contained: d3 and friends inside).
FILES = {
    "force-graph": ["dist/force-graph.min.js", "LICENSE"],
}


class BuildError(RuntimeError):
    pass


def vendor(node_modules: Path = NODE_MODULES, target: Path = VENDOR) -> list[Path]:
    """Copy the pinned files into ``target``; fail if ``npm ci`` did not install them."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for package, files in FILES.items():
        root = node_modules / package
        manifest = root / "package.json"
        if not manifest.is_file():
            raise BuildError(f"{package} is not installed: run `npm ci` in {HERE}")
        version = json.loads(manifest.read_text())["version"]
        for name in files:
            source = root / name
            suffix = "" if name.endswith(".js") else f".{package}"
            dest = target / (Path(name).name + suffix)
            shutil.copyfile(source, dest)
            copied.append(dest)
        (target / f"{package}.version").write_text(version + "\n")
    return copied


def collect() -> None:
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spegel_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("collectstatic", interactive=False, verbosity=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-collect", action="store_true", help="only copy into static/")
    args = parser.parse_args(argv)
    try:
        for path in vendor():
            print(f"vendored {path.relative_to(HERE)}")
    except BuildError as exc:
        print(f"build_static: {exc}", file=sys.stderr)
        return 1
    if not args.no_collect:
        collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
