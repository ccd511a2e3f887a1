"""The real page in headless Debian Chromium: a new event appears without a reload.

daphne serves a test wrapper of the admin application on 127.0.0.1 (a subprocess, stopped by
PID); the test publishes events inside it through ``POST /__test__/event`` (tests only) and
watches ``window.spegelGraph``, the data the page handed to force-graph.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.visualize.event_asgi import EVENT_PATH

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "visualize" / "static" / "visualize" / "vendor" / "force-graph.min.js"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_DIR = Path(tempfile.gettempdir()) / "spegel-visualize"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_vendored() -> None:
    """``make static`` normally did this; build it here when a test run comes first."""
    if VENDOR.is_file():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=ROOT / "visualize", check=True
    )
    subprocess.run(
        [sys.executable, str(ROOT / "visualize" / "build_static.py"), "--no-collect"], check=True
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    ensure_vendored()
    port = free_port()
    env = {
        **os.environ,
        "VISUALIZE_ENABLED": "true",
        "DJANGO_SETTINGS_MODULE": "spegel_site.settings",
        "DATA_DIR": str(tmp_path_factory.mktemp("node")),
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path_factory.mktemp("daphne") / "daphne.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.visualize.event_asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"daphne exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(base + "/visualize/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"daphne did not answer in 30s; see {log.name}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def publish(base: str, **event: Any) -> None:
    values = {"kind": "blob", "registry": "docker.io", "method": "GET", "bytes": 2048}
    values.update(event)
    response = httpx.post(base + EVENT_PATH, json=values, timeout=5)
    assert response.status_code == 204


def links(page: Any) -> list[dict[str, Any]]:
    return sorted(page.evaluate("window.spegelGraph.links"), key=lambda link: link["id"])


def wait_for_link(page: Any, key: str, status: int) -> None:
    page.wait_for_function(
        "([key, status]) => (window.spegelGraph?.links || [])"
        ".some(l => l.id === key && l.status === status)",
        arg=[key, status],
        timeout=10_000,
    )


def test_new_links_appear_live_in_chromium(server: str) -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 700})
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.goto(server + "/visualize/")
            page.wait_for_function(
                "window.spegelGraph?.connected && window.spegelGraph.messages >= 1"
            )
            assert page.evaluate("typeof window.ForceGraph") == "function"
            assert page.locator("#graph canvas").count() >= 1
            assert links(page) == []
            loads = page.evaluate("performance.getEntriesByType('navigation').length")

            # An outgoing pull starts (pending), then completes: the same link changes colour.
            publish(server, direction="outgoing", peer="127.0.0.202", key="sha256:live1", status=0)
            wait_for_link(page, "sha256:live1", 0)
            publish(
                server, direction="outgoing", peer="127.0.0.202", key="sha256:live1", status=200
            )
            wait_for_link(page, "sha256:live1", 200)

            # A second tab sees the next events too.
            other = context.new_page()
            other.goto(server + "/visualize/?direction=incoming")
            other.wait_for_function("window.spegelGraph?.messages >= 1")
            publish(
                server, direction="incoming", peer="127.0.0.99", key="docker.io/app:1", status=200
            )
            publish(server, direction="outgoing", peer="Not Found", key="sha256:miss", status=404)
            wait_for_link(page, "sha256:miss", 404)
            wait_for_link(page, "docker.io/app:1", 200)
            wait_for_link(other, "docker.io/app:1", 200)

            assert links(page) == [
                {"id": "docker.io/app:1", "source": "127.0.0.99", "target": "self", "status": 200},
                {"id": "sha256:live1", "source": "self", "target": "127.0.0.202", "status": 200},
                {"id": "sha256:miss", "source": "self", "target": "Not Found", "status": 404},
            ]
            assert links(other) == [
                {"id": "docker.io/app:1", "source": "127.0.0.99", "target": "self", "status": 200}
            ]
            graph = page.evaluate("window.spegelGraph")
            assert sorted(n["id"] for n in graph["nodes"]) == [
                "127.0.0.202",
                "127.0.0.99",
                "Not Found",
                "self",
            ]
            assert graph["counters"] == {
                "peers": 3,
                "links": 3,
                "ok": 2,
                "errors": 1,
                "pending": 0,
            }
            assert page.text_content("#count-links") == "3"
            assert page.text_content("#count-errors") == "1"
            # No reload happened: the page got everything over its socket.
            assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
            page.wait_for_timeout(
                3800
            )  # let the layout settle (and zoom to fit) for the screenshot
            page.screenshot(path=str(SCREENSHOT_DIR / "graph.png"))

            # The direction selector re-filters over the same socket.
            page.check('input[name="direction"][value="outgoing"]')
            page.wait_for_function("window.spegelGraph.direction === 'outgoing'")
            assert [link["id"] for link in links(page)] == ["sha256:live1", "sha256:miss"]
            assert "direction=outgoing" in page.url
            page.screenshot(path=str(SCREENSHOT_DIR / "graph-outgoing.png"))
        finally:
            browser.close()
    hosts = {url.split("/")[2] for url in requested}
    assert hosts == {server.split("/")[2]}, f"the page fetched from elsewhere: {hosts}"
