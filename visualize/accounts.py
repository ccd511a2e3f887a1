"""The first admin user of a pod, from a Kubernetes Secret (see ``ensure_admin``)."""

from __future__ import annotations

from typing import Literal

from django.contrib.auth import get_user_model

Outcome = Literal["created", "updated", "unchanged"]


def ensure_admin(username: str, password: str) -> Outcome:
    """Make ``username`` an active superuser with ``password``; idempotent."""
    if not username or not password:
        raise ValueError("admin username and password must both be set")
    user_model = get_user_model()
    user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        user_model.objects.create_superuser(username=username, email="", password=password)
        return "created"
    changed = False
    if not user.check_password(password):
        user.set_password(password)
        changed = True
    for flag in ("is_active", "is_staff", "is_superuser"):
        if not getattr(user, flag):
            setattr(user, flag, True)
            changed = True
    if changed:
        user.save()
        return "updated"
    return "unchanged"
