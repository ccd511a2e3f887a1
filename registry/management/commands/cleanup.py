"""``manage.py cleanup``: restore the operator's original hosts configuration from ``_backup/``.

With ``--addr`` it then answers ``GET /readyz`` with 200 until SIGTERM, so a Helm post-delete
hook can wait until every node has been cleaned.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.config import CLEANUP_FLAGS, add_flags, options_from, split_addr
from registry.hostsdir import cleanup

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Restore containerd's hosts configuration from _backup/ and remove ours."

    def add_arguments(self, parser: CommandParser) -> None:
        add_flags(parser, CLEANUP_FLAGS, os.environ)

    def handle(self, *args: Any, **options: Any) -> None:
        values = options_from(CLEANUP_FLAGS, options)
        logging.getLogger().setLevel(values["log_level"].upper())
        try:
            cleanup(Path(values["containerd_registry_config_path"]))
        except OSError as err:
            raise CommandError(f"cleanup failed: {err}") from err
        if values["addr"]:
            serve_readyz(values["addr"])


class _Readyz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.split("?")[0] == "/readyz" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve_readyz(addr: str) -> None:
    """Serve ``/readyz`` on ``addr`` until SIGTERM or SIGINT."""
    host, port = split_addr(addr)
    server_class = _V6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host or "0.0.0.0", port), _Readyz)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    logger.info("cleanup done, serving /readyz", extra={"addr": addr})
    stop.wait()
    server.shutdown()
    server.server_close()
