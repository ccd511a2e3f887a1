"""A minimal HTTP/1.1 client for blob bodies from peers: large reads, no per-chunk overhead.

httpx reads a body in 64 KiB pieces through several layers (about 3 CPU-s per GiB here);
a plain asyncio stream with megabyte reads costs a fraction of that. Only what a peer blob
transfer needs: one request per connection, a ``Content-Length`` body (chunked or unframed
answers are refused), an idle timeout between reads. Manifests keep using httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

READ_SIZE = 8 << 20  # take whatever is buffered: no memmove of a large remainder
_BUFFER_LIMIT = 4 << 20  # the transport pauses reading above 2x this
_MAX_HEADER = 64 << 10


class PeerHTTPError(Exception):
    """The peer's answer was malformed, too slow, or ended early."""


@dataclass
class PeerResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_timeout: float

    async def body(self, length: int) -> AsyncIterator[bytes]:
        """Exactly ``length`` bytes, in reads of up to 1 MiB; anything short raises."""
        remaining = length
        while remaining:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    chunk = await self.reader.read(min(remaining, READ_SIZE))
            except TimeoutError as err:
                raise PeerHTTPError(f"no data for {self.idle_timeout}s") from err
            except OSError as err:
                raise PeerHTTPError(f"connection failed: {err}") from err
            if not chunk:
                raise PeerHTTPError(f"peer closed with {remaining} of {length} bytes missing")
            remaining -= len(chunk)
            yield chunk

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def request(
    method: str,
    host: str,
    port: int,
    target: str,
    headers: Mapping[str, str],
    *,
    local_address: str | None = None,
    connect_timeout: float = 0.5,
    header_timeout: float = 3.0,
    idle_timeout: float = 30.0,
) -> PeerResponse:
    """Send one request and read the status line and headers (within ``header_timeout``)."""
    try:
        async with asyncio.timeout(connect_timeout):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                limit=_BUFFER_LIMIT,
                local_addr=(local_address, 0) if local_address else None,
            )
    except (OSError, TimeoutError) as err:
        raise PeerHTTPError(f"cannot connect to {host}:{port}: {err!r}") from err
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        async with asyncio.timeout(header_timeout):
            head = await reader.readuntil(b"\r\n\r\n")
        status, parsed = parse_head(head)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
        writer.close()
        raise PeerHTTPError(f"no valid answer from {host}:{port}: {err!r}") from err
    except PeerHTTPError:
        writer.close()
        raise
    return PeerResponse(status, parsed, reader, writer, idle_timeout)


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    if len(head) > _MAX_HEADER:
        raise PeerHTTPError("response headers too large")
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as err:  # pragma: no cover - latin-1 decodes any byte
        raise PeerHTTPError("undecodable headers") from err
    status_line, *header_lines = text.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise PeerHTTPError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise PeerHTTPError(f"malformed header line: {line[:80]!r}")
        key = name.lower()
        if key in headers and key in ("content-length", "content-range", "docker-content-digest"):
            raise PeerHTTPError(f"duplicate {key} header")
        headers[key] = value.strip()
    return int(parts[1]), headers
