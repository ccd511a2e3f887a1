"""Lint the Dockerfile for the obvious mistakes (no Docker engine here to build it)."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation line"
    return out


def args_of(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def build_args() -> dict[str, str]:
    values = {}
    for rest in args_of("ARG"):
        name, _, default = rest.partition("=")
        values[name] = default
    return values


def base_images() -> list[str]:
    """Every external FROM image, ARG defaults substituted; stage references excluded."""
    stages: set[str] = set()
    images = []
    for rest in args_of("FROM"):
        parts = [p for p in rest.split() if not p.startswith("--")]
        image = re.sub(r"\$\{(\w+)\}", lambda m: build_args()[m.group(1)], parts[0])
        if image not in stages:
            images.append(image)
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    return images


def ignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def ignored(rel: str) -> bool:
    for pattern in ignore_patterns():
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.removeprefix("**/")):
            return True
        if pattern.startswith("**/") and any(
            fnmatch.fnmatch(part, pattern[3:]) for part in Path(rel).parts
        ):
            return True
        if rel.startswith(pattern + "/"):
            return True
    return False


def test_base_images_pinned_with_a_tag() -> None:
    images = base_images()
    assert images, "no FROM"
    for image in images:
        if "@sha256:" in image:
            continue
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag, f"{image} has no tag"
        assert "latest" not in tag, image
    runtime = images[-1]
    assert runtime.startswith("python:3.11") and "slim" in runtime, runtime


def test_no_latest_anywhere() -> None:
    for keyword, rest in instructions():
        if keyword in ("FROM", "ARG"):
            assert ":latest" not in rest, rest


def test_user_is_numeric_and_not_root() -> None:
    users = args_of("USER")
    assert users, "no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, users[-1]
    assert not group or group.isdigit()


def test_no_add_of_urls_and_no_secrets() -> None:
    for keyword, rest in instructions():
        assert keyword != "ADD", f"use COPY, not ADD: {rest}"
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"(?i)(password|secret|token|api_key)", rest), rest
    for rest in args_of("RUN"):
        assert not re.search(r"\b(curl|wget)\b", rest), f"no downloads in RUN: {rest}"


def test_requirements_installed_with_r() -> None:
    runs = " ".join(args_of("RUN"))
    assert re.search(r"pip install[^&]*-r \S*requirements\S*\.txt", runs), runs
    # The image takes the "# Runtime" part of requirements.txt: both markers must exist.
    text = (ROOT / "requirements.txt").read_text()
    runtime = text.split("# Runtime", 1)[1].split("# Build and test", 1)[0]
    names = {line.split("==")[0].lower() for line in runtime.splitlines() if "==" in line}
    assert {"django", "libp2p", "daphne", "channels", "django-prometheus"} <= names
    assert "pytest" not in names and "playwright" not in names


def test_fastecdsa_build_deps_in_builder_and_gmp_at_runtime() -> None:
    text = DOCKERFILE.read_text()
    builder, _, runtime = text.rpartition("\nFROM ")
    assert "build-essential" in builder and "libgmp-dev" in builder
    assert "libgmp10" in runtime and "build-essential" not in runtime
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime


def test_static_files_are_built() -> None:
    runs = " ".join(args_of("RUN"))
    assert "npm ci" in runs
    assert "visualize/build_static.py" in runs  # vendors the npm bundle and runs collectstatic


def test_expose_entrypoint_cmd() -> None:
    exposed = {p.split("/")[0] for rest in args_of("EXPOSE") for p in rest.split()}
    assert {"5000", "9090", "5001"} <= exposed
    assert args_of("ENTRYPOINT")[-1] == '["python", "manage.py"]'
    assert args_of("CMD")[-1] == '["registry"]'


def test_every_copy_source_exists_and_is_not_ignored() -> None:
    for rest in args_of("COPY"):
        parts = shlex.split(rest)
        if any(p.startswith("--from=") for p in parts):
            continue
        sources = [p for p in parts if not p.startswith("--")][:-1]
        assert sources, rest
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY source {source} does not exist"
            assert not ignored(source), f"COPY source {source} is excluded by .dockerignore"


@pytest.mark.parametrize(
    "path", [".venv", ".git", "visualize/node_modules", "node_modules", "staticfiles"]
)
def test_dockerignore_excludes(path: str) -> None:
    assert ignored(path), path


def test_app_sources_are_copied() -> None:
    copied = " ".join(args_of("COPY"))
    for name in ("manage.py", "spegel_site", "registry", "routing", "visualize"):
        assert name in copied, name
