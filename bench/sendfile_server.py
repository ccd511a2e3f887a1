"""A true ``sendfile(2)`` file server: ``python -m http.server`` with copyfile -> socket.sendfile.

``python -m http.server`` itself copies with ``shutil.copyfileobj`` (64 KiB read/write, not
sendfile), so this is the kernel zero-copy ceiling for the same request handling.
Usage: ``python -m bench.sendfile_server PORT BIND DIR``.
"""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SendfileHandler(SimpleHTTPRequestHandler):
    def copyfile(self, source: Any, outputfile: Any) -> None:
        self.wfile.flush()
        self.connection.sendfile(source)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str]) -> None:
    port, bind, directory = int(argv[0]), argv[1], argv[2]
    handler = functools.partial(SendfileHandler, directory=directory)
    ThreadingHTTPServer.daemon_threads = True
    with ThreadingHTTPServer((bind, port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
