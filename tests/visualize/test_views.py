"""The page, the graph JSON (ETag/304) and static files on the admin port."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.visualize.conftest import MakeEvent
from visualize.store import MemoryEventStore


@pytest.mark.parametrize("path", ["/visualize/", "/visualize/graph", "/visualize/measure"])
def test_disabled_by_default_404(client: Client, store: MemoryEventStore, path: str) -> None:
    assert client.get(path).status_code == 404


def test_page_renders_with_local_assets(
    client: Client, enabled: Any, store: MemoryEventStore
) -> None:
    response = client.get("/visualize/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/visualize/vendor/force-graph.min.js" in html
    assert "/static/visualize/graph.js" in html
    assert "unpkg" not in html and "cdn" not in html.lower()
    for counter in ["peers", "links", "ok", "errors", "pending"]:
        assert f'id="count-{counter}"' in html
    for direction in ["incoming", "both", "outgoing"]:
        assert f'value="{direction}"' in html


def test_graph_json_with_direction(
    client: Client, enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    store.record(make_event("one", "127.0.0.1", "outgoing", 200))
    store.record(make_event("three", "127.0.0.200", "incoming", 200))
    response = client.get("/visualize/graph", {"direction": "incoming"})
    assert response.status_code == 200
    assert response.json() == {
        "nodes": [{"id": "self"}, {"id": "127.0.0.200"}],
        "links": [{"id": "three", "source": "127.0.0.200", "target": "self", "status": 200}],
    }
    assert client.get("/visualize/graph", {"direction": "true"}).json()["links"][0]["id"] == "one"


def test_graph_bad_direction_is_400(client: Client, enabled: Any, store: MemoryEventStore) -> None:
    assert client.get("/visualize/graph", {"direction": "up"}).status_code == 400


def test_graph_etag_and_304(
    client: Client, enabled: Any, store: MemoryEventStore, make_event: MakeEvent
) -> None:
    store.record(make_event("one"))
    first = client.get("/visualize/graph")
    tag = first["ETag"]
    assert tag.startswith('"') and len(tag) == 10
    again = client.get("/visualize/graph", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again["ETag"] == tag
    assert again.content == b""
    other = client.get(
        "/visualize/graph", {"direction": "incoming"}, headers={"If-None-Match": tag}
    )
    assert other.status_code == 200  # another view, another tag
    store.record(make_event("two"))
    changed = client.get("/visualize/graph", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed["ETag"] != tag


def test_post_is_refused(client: Client, enabled: Any, store: MemoryEventStore) -> None:
    assert client.post("/visualize/graph").status_code == 405


def test_static_files_served_on_admin_port(client: Client) -> None:
    response = client.get("/static/visualize/graph.js")
    assert response.status_code == 200
    assert b"spegelGraph" in b"".join(response.streaming_content)
