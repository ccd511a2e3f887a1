"""The read-only history admin: login required, filters and search return the right rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.visualize.conftest import MakeEvent
from visualize.models import PullRecord

pytestmark = pytest.mark.django_db

URL = "/admin/visualize/pullrecord/"


@pytest.fixture
def rows(make_event: MakeEvent) -> None:
    events = [
        make_event("docker.io/library/nginx:1.27", "127.0.0.202", "outgoing", 200, kind="manifest"),
        make_event("sha256:" + "a" * 64, "127.0.0.202", "outgoing", 200),
        make_event("sha256:" + "b" * 64, "Not Found", "outgoing", 404, registry="ghcr.io"),
        make_event("sha256:" + "c" * 64, "127.0.0.205", "incoming", 200, registry="ghcr.io"),
    ]
    PullRecord.objects.bulk_create([PullRecord.from_event(e) for e in events])


def keys(response: Any) -> set[str]:
    return {row.key for row in response.context["cl"].result_list}


def test_login_required(client: Client, rows: None) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_changelist_shows_all_rows(admin_client: Client, rows: None) -> None:
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert len(keys(response)) == 4
    # The filters and the date hierarchy are offered.
    html = response.content.decode()
    for needle in ["direction__exact=", "status=", "peer=", "registry="]:
        assert needle in html
    assert "time__year" in html or "time__day" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"direction__exact": "incoming"}, {"sha256:" + "c" * 64}),
        ({"status": "404"}, {"sha256:" + "b" * 64}),
        ({"peer": "127.0.0.202"}, {"docker.io/library/nginx:1.27", "sha256:" + "a" * 64}),
        ({"registry": "ghcr.io"}, {"sha256:" + "b" * 64, "sha256:" + "c" * 64}),
        ({"q": "nginx"}, {"docker.io/library/nginx:1.27"}),
        ({"q": "a" * 64}, {"sha256:" + "a" * 64}),
        (
            {"direction__exact": "outgoing", "status": "200"},
            {
                "docker.io/library/nginx:1.27",
                "sha256:" + "a" * 64,
            },
        ),
    ],
)
def test_filters_and_search(admin_client: Client, rows: None, query: dict, expected: set) -> None:
    response = admin_client.get(URL, query)
    assert response.status_code == 200
    assert keys(response) == expected


def test_read_only(admin_client: Client, rows: None) -> None:
    row = PullRecord.objects.first()
    assert row is not None
    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    detail = admin_client.get(f"{URL}{row.pk}/change/")
    assert detail.status_code == 200  # viewable...
    assert b'name="_save"' not in detail.content  # ...but not editable
    assert PullRecord.objects.count() == 4
