"""``manage.py registry``: run the node (registry port, admin port, router, state tracker)."""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from registry.config import REGISTRY_FLAGS, SpegelConfig, add_flags, database_path


class Command(BaseCommand):
    help = "Run the spegel-py node: OCI registry mirror, admin port, P2P router."

    def add_arguments(self, parser: CommandParser) -> None:
        add_flags(parser, REGISTRY_FLAGS, os.environ)

    def handle(self, *args: Any, **options: Any) -> None:
        config = SpegelConfig.from_options(options)
        settings.SPEGEL = config
        settings.DATABASES["default"]["NAME"] = database_path(config)
        os.makedirs(os.path.dirname(database_path(config)), exist_ok=True)
        logging.getLogger().setLevel(config.log_level.upper())
        from registry.runtime import NodeRuntime

        code = NodeRuntime(config).run()
        if code:
            raise SystemExit(code)
