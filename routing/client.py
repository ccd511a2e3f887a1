"""``P2PRouter``: the asyncio side of the routing process, implementing ``routing.router.Router``.

Usage in the registry process::

    router = P2PRouter.from_config(config, socket_path)
    await router.start()          # spawns python -m routing.daemon, waits until it answers
    ...                           # ready() / resolve() / advertise() / withdraw()
    await router.stop()           # SIGTERM by PID, SIGKILL after a grace period

One Unix-socket connection carries every call; replies are matched by request id, so any
number of calls may be in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from routing.router import Peer

START_TIMEOUT = 30.0
STOP_GRACE = 5.0
MAX_LINE = 16 * 1024 * 1024
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RouterUnavailable(RuntimeError):
    """The routing process is not running or did not answer."""


class P2PRouter:
    def __init__(self, socket_path: str, daemon_args: Sequence[str] = ()) -> None:
        self.socket_path = socket_path
        self.daemon_args = list(daemon_args)
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._read_task: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()

    @classmethod
    def from_config(
        cls, config: Any, socket_path: str, extra_args: Sequence[str] = ()
    ) -> P2PRouter:
        """Build the daemon's command line from a ``registry.config.SpegelConfig``."""
        args = [
            "--router-addr",
            config.router_addr,
            "--bootstrap-kind",
            config.bootstrap_kind,
            "--log-level",
            config.log_level,
        ]
        for flag, value in (
            ("--dns-bootstrap-domain", config.dns_bootstrap_domain),
            ("--http-bootstrap-addr", config.http_bootstrap_addr),
            ("--http-bootstrap-url", config.http_bootstrap_url),
            ("--data-dir", config.data_dir),
        ):
            if value:
                args += [flag, value]
        if config.static_bootstrap_peers:
            args += ["--static-bootstrap-peers", *config.static_bootstrap_peers]
        return cls(socket_path, [*args, *extra_args])

    # -- process lifecycle ------------------------------------------------------------------

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Spawn the routing daemon and wait until its socket answers."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "routing.daemon",
            "--socket",
            self.socket_path,
            *self.daemon_args,
            cwd=PROJECT_DIR,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.returncode is not None:
                raise RouterUnavailable(f"routing daemon exited with {self.process.returncode}")
            try:
                await self._call("ping", timeout=1.0)
                return
            except (RouterUnavailable, OSError) as exc:
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RouterUnavailable(f"routing daemon did not answer in {timeout}s") from exc
                await asyncio.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Close the connection and terminate the daemon by its PID."""
        await self._disconnect()
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()

    # -- transport --------------------------------------------------------------------------

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self._writer is not None:
                return
            try:
                reader, writer = await asyncio.open_unix_connection(
                    self.socket_path, limit=MAX_LINE
                )
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise RouterUnavailable(f"routing socket {self.socket_path}: {exc}") from exc
            self._reader, self._writer = reader, writer
            self._read_task = asyncio.create_task(self._read_loop(reader))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                queue = self._pending.get(message.get("id"))
                if queue is not None:
                    queue.put_nowait(message)
        finally:
            self._writer = None
            for queue in self._pending.values():
                queue.put_nowait({"error": "RouterUnavailable: connection closed"})

    async def _disconnect(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
            self._read_task = None

    async def _send(self, request: dict[str, Any]) -> asyncio.Queue[dict[str, Any]]:
        await self._connect()
        rid = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = queue
        assert self._writer is not None
        self._writer.write(json.dumps({"id": rid, **request}).encode() + b"\n")
        request["_rid"] = rid
        return queue

    async def _call(self, op: str, timeout: float | None = None, **params: Any) -> Any:
        request: dict[str, Any] = {"op": op, **params}
        queue = await self._send(request)
        try:
            reply = await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError as exc:
            raise RouterUnavailable(f"routing daemon did not answer {op!r}") from exc
        finally:
            self._pending.pop(request["_rid"], None)
        if "error" in reply:
            raise RouterUnavailable(f"routing {op} failed: {reply['error']}")
        return reply["result"]

    # -- Router -----------------------------------------------------------------------------

    async def ready(self) -> bool:
        try:
            return bool(await self._call("ready", timeout=2.0))
        except RouterUnavailable:
            return False

    async def resolve(self, key: str, count: int, timeout: float) -> AsyncIterator[Peer]:
        request: dict[str, Any] = {"op": "resolve", "key": key, "count": count, "timeout": timeout}
        queue = await self._send(request)
        deadline = time.monotonic() + timeout
        try:
            while True:
                # A little slack beyond the daemon's own deadline for the final "done" line.
                remaining = deadline - time.monotonic() + 0.05
                try:
                    reply = await asyncio.wait_for(queue.get(), max(remaining, 0))
                except TimeoutError:
                    return
                if "peer" in reply:
                    yield Peer(reply["peer"]["peer_id"], reply["peer"]["host"])
                else:
                    return
        finally:
            self._pending.pop(request["_rid"], None)

    async def advertise(self, keys: Sequence[str]) -> None:
        await self._call("advertise", keys=list(keys))

    async def withdraw(self, keys: Sequence[str]) -> None:
        await self._call("withdraw", keys=list(keys))

    async def self_info(self) -> dict[str, Any]:
        """``{"peer_id", "addrs", "host", "pid"}`` of the routing node."""
        return dict(await self._call("self", timeout=5.0))

    async def self_addrs(self) -> list[str]:
        return list((await self.self_info())["addrs"])

    async def peers(self) -> list[dict[str, Any]]:
        """Routing-table peers with their addresses and connection state (debug page)."""
        return list(await self._call("peers", timeout=5.0))

    async def stats(self) -> dict[str, Any]:
        return dict(await self._call("stats", timeout=10.0))

    async def close(self) -> None:
        await self.stop()
