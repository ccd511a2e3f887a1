"""Create or update the admin user from a Secret: ``python manage.py ensure_admin``.

Reads ``--username`` / ``--password-file`` or the environment variables ``SPEGEL_ADMIN_USERNAME``
and ``SPEGEL_ADMIN_PASSWORD`` / ``SPEGEL_ADMIN_PASSWORD_FILE`` (mount the Secret as env vars or as
a file). Applies migrations first (``--no-migrate`` to skip). Idempotent; never prints the password.
Does nothing, successfully, when no credentials are configured.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from visualize.accounts import ensure_admin
from visualize.runtime import prepare_database


class Command(BaseCommand):
    help = "Create or update the Django admin user from SPEGEL_ADMIN_* env vars or a file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default=os.environ.get("SPEGEL_ADMIN_USERNAME", ""))
        parser.add_argument(
            "--password-file", default=os.environ.get("SPEGEL_ADMIN_PASSWORD_FILE", "")
        )
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        password = os.environ.get("SPEGEL_ADMIN_PASSWORD", "")
        if options["password_file"]:
            try:
                with open(options["password_file"], encoding="utf-8") as handle:
                    password = handle.read().strip()
            except OSError as exc:
                raise CommandError(f"cannot read admin password file: {exc.strerror}") from None
        if not username and not password:
            self.stdout.write("ensure_admin: no admin credentials configured, nothing to do")
            return
        if not username or not password:
            raise CommandError("set both an admin username and a password (env or file)")
        if not options["no_migrate"]:
            prepare_database()
        outcome = ensure_admin(username, password)
        self.stdout.write(f"ensure_admin: user {username!r} {outcome}")
