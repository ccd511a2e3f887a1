"""``ensure_admin``: the first admin user of a pod, from a Secret; idempotent, password unlogged."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word"


def run(*args: str) -> str:
    out = StringIO()
    call_command("ensure_admin", "--no-migrate", *args, stdout=out)
    return out.getvalue()


def test_from_env_created_then_unchanged(monkeypatch: Any, caplog: Any) -> None:
    monkeypatch.setenv("SPEGEL_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("SPEGEL_ADMIN_PASSWORD", SECRET)
    first = run()
    second = run()
    assert "created" in first
    assert "unchanged" in second
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.is_staff and user.check_password(SECRET)
    assert SECRET not in first + second + caplog.text


def test_password_file_rotates_password(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("SPEGEL_ADMIN_PASSWORD", raising=False)
    secret = tmp_path / "password"
    secret.write_text("first-password\n")
    run("--username", "ops", "--password-file", str(secret))
    secret.write_text("second-password\n")
    assert "updated" in run("--username", "ops", "--password-file", str(secret))
    assert get_user_model().objects.get(username="ops").check_password("second-password")


def test_nothing_configured_is_a_no_op(monkeypatch: Any) -> None:
    for name in ["SPEGEL_ADMIN_USERNAME", "SPEGEL_ADMIN_PASSWORD", "SPEGEL_ADMIN_PASSWORD_FILE"]:
        monkeypatch.delenv(name, raising=False)
    assert "nothing to do" in run()
    assert get_user_model().objects.count() == 0


def test_half_configured_fails(monkeypatch: Any) -> None:
    monkeypatch.delenv("SPEGEL_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("SPEGEL_ADMIN_PASSWORD_FILE", raising=False)
    with pytest.raises(CommandError, match="username and a password"):
        run("--username", "ops")


def test_login_with_created_admin(client: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("SPEGEL_ADMIN_PASSWORD", SECRET)
    run("--username", "ops")
    assert client.login(username="ops", password=SECRET)
    assert client.get("/admin/visualize/pullrecord/").status_code == 200
