"""``manage.py configuration``: write containerd's hosts.toml files so it asks the mirrors first.

Runs as an init container on every node. Bad input fails with a non-zero exit and a message
naming the entry, before anything is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.auth import BasicAuth
from registry.config import CONFIGURATION_FLAGS, add_flags, options_from
from registry.containerd.preflight import check_containerd_config
from registry.hostsconfig import HostsConfigError
from registry.hostsdir import Settings, configure

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Write containerd hosts.toml files that list the mirror targets before each registry."

    def add_arguments(self, parser: CommandParser) -> None:
        add_flags(parser, CONFIGURATION_FLAGS, os.environ)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            values = options_from(CONFIGURATION_FLAGS, options)
        except ValueError as err:
            raise CommandError(str(err)) from err
        logging.getLogger().setLevel(values["log_level"].upper())
        config_path = values["containerd_registry_config_path"]
        if values["containerd_config_file"]:
            self._preflight(values["containerd_config_file"], config_path)
        settings = Settings(
            config_path=Path(config_path),
            mirrored_registries=values["mirrored_registries"],
            mirror_targets=values["mirror_targets"],
            resolve_tags=values["resolve_tags"],
            prepend_existing=values["prepend_existing"],
            authorization=_authorization(values["basic_auth_dir"]),
        )
        try:
            files = configure(settings)
        except HostsConfigError as err:
            raise CommandError(str(err)) from err
        logger.info(
            "containerd mirror configuration written",
            extra={"path": config_path, "registries": [f.directory for f in files]},
        )

    def _preflight(self, config_file: str, config_path: str) -> None:
        try:
            text = Path(config_file).read_text()
        except OSError as err:
            logger.warning(f"cannot read containerd config {config_file}: {err}; skipping check")
            return
        verdict = check_containerd_config(text, config_path)
        for warning in verdict.warnings:
            logger.warning(warning)
        if not verdict.ok:
            raise CommandError("; ".join(verdict.errors))


def _authorization(directory: str) -> str:
    if not directory:
        return ""
    try:
        auth = BasicAuth.from_dir(directory)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot read basic auth credentials: {err}") from err
    return auth.header if auth else ""
