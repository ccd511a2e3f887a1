"""The libp2p routing node (trio): host + Kademlia DHT, advertise/withdraw/resolve, bootstrap.

Design choices (measured, see LIBP2P.md and the routing report):
- Records are pushed to every peer in the routing table (the k=20 closest per key when the
  table is larger), over one pipelined stream per peer (``routing.wire``). In clusters of up to
  21 nodes every node then holds every record, so a resolve is answered from the local store in
  well under a millisecond; the network is still asked for further providers until the deadline.
- A peer that connects gets all our keys at once (``_sync_loop``), so a late joiner can resolve
  locally too; every ``reprovide_interval`` all keys are pushed again, before records expire.
- A provider is returned only when we hold a live connection to it or can dial it; a failed dial
  marks it dead for ``DEAD_FOR`` seconds and drops it from the routing table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import trio
import trio.lowlevel
from libp2p import new_host
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from routing import libp2p_patches, wire
from routing.addrs import ip_of, listen_and_announce
from routing.bootstrap import Bootstrapper, Candidate
from routing.identity import load_key_pair
from routing.router import Peer, key_multihash

log = logging.getLogger(__name__)

K = 20
DEAD_FOR = 30.0
SEND_TIMEOUT = 120.0
BACKOFF_MIN, BACKOFF_MAX = 0.05, 10.0
REBOOTSTRAP_EVERY = 30.0


@dataclass
class NodeOptions:
    router_addr: str = ":5001"
    data_dir: str = ""
    record_ttl: float = 19 * 60.0
    reprovide_interval: float = 15 * 60.0
    inbound_streams: int = 1024
    provider_rate_max: int = 1_000_000_000
    lookup_fanout: int = 3


class PeerSender:
    """Queue of keys for one peer, drained by one worker over one stream at a time."""

    def __init__(self, node: RoutingNode, peer_id: ID) -> None:
        self.node, self.peer_id = node, peer_id
        self.pending: list[tuple[list[bytes], trio.Event]] = []
        self.wakeup = trio.Event()
        self.sent = self.acked = 0

    def enqueue(self, keys: list[bytes]) -> trio.Event:
        done = trio.Event()
        self.pending.append((keys, done))
        self.wakeup.set()
        return done

    async def run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup = trio.Event()
            batch, self.pending = self.pending, []
            keys = [k for keys, _ in batch for k in keys]
            try:
                acked = await wire.send_add_providers(
                    self.node.host, self.peer_id, keys, self.node.announce, SEND_TIMEOUT
                )
            except Exception as exc:
                log.debug("advertise to %s failed: %r", self.peer_id, exc)
                acked = 0
            self.sent += len(keys)
            self.acked += acked
            if acked < len(keys):
                log.info("peer %s stored %d of %d records", self.peer_id, acked, len(keys))
            for _, done in batch:
                done.set()


class RoutingNode:
    def __init__(self, options: NodeOptions, bootstrapper: Bootstrapper) -> None:
        self.options = options
        self.bootstrapper = bootstrapper
        libp2p_patches.apply(options.record_ttl)
        self.listen, announce = listen_and_announce(options.router_addr)
        self.announce = [announce]
        self.host = new_host(
            key_pair=load_key_pair(options.data_dir),
            listen_addrs=[self.listen],
            announce_addrs=self.announce,
            disable_identify_address_discovery=True,
        )
        self.peer_id: ID = self.host.get_id()
        self.dht = KadDHT(self.host, DHTMode.SERVER, enable_random_walk=False)
        libp2p_patches.configure_dht(
            self.dht,
            provider_rate_max=options.provider_rate_max,
            inbound_streams=options.inbound_streams,
        )
        libp2p_patches.buffer_inbound_streams(self.dht)
        self.providing: set[bytes] = set()
        self.senders: dict[ID, PeerSender] = {}
        self.dead: dict[ID, float] = {}
        self.alone = False
        self._source_failures = 0
        self.bootstrapped = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._dialing: dict[ID, trio.Event] = {}

    # -- identity and state ---------------------------------------------------------------

    def self_addrs(self) -> list[str]:
        return [str(a) for a in self.host.get_addrs()]

    def ready(self) -> bool:
        return self.dht.routing_table.size() > 0 or self.alone

    def connected(self, peer_id: ID) -> bool:
        return peer_id in self.host.get_network().connections

    def peers(self) -> list[dict[str, object]]:
        out = []
        for peer_id in self.dht.routing_table.get_peer_ids():
            addrs = self.host.get_peerstore().addrs(peer_id)
            out.append(
                {
                    "peer_id": str(peer_id),
                    "host": ip_of(addrs),
                    "addrs": [str(a) for a in addrs],
                    "connected": self.connected(peer_id),
                }
            )
        return out

    def stats(self) -> dict[str, object]:
        by_provider: dict[str, int] = {}
        for records in self.dht.provider_store.providers.values():
            for peer_id in records:
                by_provider[peer_id] = by_provider.get(peer_id, 0) + 1
        return {
            "providing": len(self.providing),
            "records": self.dht.provider_store.size(),
            "by_provider": by_provider,
            "sent": {str(p): s.sent for p, s in self.senders.items()},
            "acked": {str(p): s.acked for p, s in self.senders.items()},
        }

    # -- run --------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with (
                self.host.run(listen_addrs=[self.listen]),
                background_trio_service(self.dht),
                trio.open_nursery() as nursery,
            ):
                self._nursery = nursery
                nursery.start_soon(self._bootstrap_loop)
                nursery.start_soon(self._sync_loop)
                nursery.start_soon(self._reprovide_loop)
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.host.close()

    # -- bootstrap --------------------------------------------------------------------------

    def _others(self, candidates: Iterable[Candidate]) -> list[PeerInfo]:
        own = {str(a) for a in self.announce} | {str(self.listen)}
        out = []
        for peer_id, addrs in candidates:
            if peer_id == str(self.peer_id) or any(a in own for a in addrs):
                continue  # never dial ourselves (C22)
            out.append(PeerInfo(ID.from_base58(peer_id), [Multiaddr(a) for a in addrs]))
        return out

    async def _connect(self, info: PeerInfo) -> bool:
        try:
            self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
            with trio.fail_after(5):
                await self.host.connect(info)
            await self.dht.routing_table.add_peer(info.peer_id, skip_server_mode_check=True)
            self.dead.pop(info.peer_id, None)
            return True
        except Exception as exc:
            log.debug("bootstrap: cannot reach %s: %r", info.peer_id, exc)
            return False

    async def bootstrap_once(self) -> bool:
        """Try the bootstrap source once; True when connected to a peer or alone by design."""
        try:
            others = self._others(await self.bootstrapper.candidates())
        except Exception as exc:
            # Once at info, then debug: a lone or early node must not fill the log (C22).
            level = logging.DEBUG if self._source_failures else logging.INFO
            self._source_failures += 1
            log.log(level, "bootstrap source (%s) not available: %r", self.bootstrapper.kind, exc)
            return False
        self._source_failures = 0
        if not others:
            if not self.alone:
                log.info("no bootstrap peers besides ourselves: running alone by design")
            self.alone = True
            return True
        self.alone = False
        results = [await self._connect(i) for i in others if not self.connected(i.peer_id)]
        if any(results):
            with trio.move_on_after(10):
                await self.dht.refresh_routing_table()
        return any(results) or any(self.connected(i.peer_id) for i in others)

    async def _bootstrap_loop(self) -> None:
        delay = BACKOFF_MIN
        while True:
            ok = await self.bootstrap_once()
            if ok and not self.bootstrapped.is_set():
                self.bootstrapped.set()
            if ok and not self.alone:
                delay = REBOOTSTRAP_EVERY
            else:
                # Alone or unreachable: keep looking (a peer may appear later), quietly.
                delay = min(max(delay * 2, BACKOFF_MIN), BACKOFF_MAX)
                if self.ready() and not self.alone:
                    delay = REBOOTSTRAP_EVERY
            await trio.sleep(delay)

    # -- advertise / withdraw -------------------------------------------------------------

    def _sender(self, peer_id: ID) -> PeerSender:
        sender = self.senders.get(peer_id)
        if sender is None:
            sender = self.senders[peer_id] = PeerSender(self, peer_id)
            assert self._nursery is not None
            self._nursery.start_soon(sender.run)
        return sender

    def _targets(self, keys: Sequence[bytes]) -> dict[ID, list[bytes]]:
        table = self.dht.routing_table
        peers = [p for p in table.get_peer_ids() if self.connected(p) or p not in self.dead]
        if len(peers) <= K:
            return {p: list(keys) for p in peers}
        grouped: dict[ID, list[bytes]] = {}
        for key in keys:
            for p in table.find_local_closest_peers(key, K):
                grouped.setdefault(p, []).append(key)
        return grouped

    def _store_self(self, keys: Iterable[bytes]) -> None:
        me = PeerInfo(self.peer_id, list(self.announce))
        store = self.dht.provider_store
        for key in keys:
            store.add_provider(key, me)

    async def push(self, keys: Sequence[bytes]) -> None:
        events = [self._sender(p).enqueue(ks) for p, ks in self._targets(keys).items()]
        for event in events:
            await event.wait()

    async def advertise(self, keys: Sequence[str]) -> None:
        hashed = [key_multihash(k) for k in keys]
        self.providing.update(hashed)
        self._store_self(hashed)
        await self.push(hashed)

    def withdraw(self, keys: Sequence[str]) -> None:
        me = str(self.peer_id)
        providers = self.dht.provider_store.providers
        for key in map(key_multihash, keys):
            self.providing.discard(key)
            records = providers.get(key)
            if records is not None:
                records.pop(me, None)
                if not records:
                    del providers[key]

    async def _sync_loop(self) -> None:
        """Give every newly connected peer all our keys; forget peers that went away."""
        synced: set[ID] = set()
        while True:
            connected = set(self.host.get_network().connections)
            for peer_id in connected - synced:
                self.dead.pop(peer_id, None)
                if self.dht.routing_table.size() < K or self.dht.routing_table.peer_in_table(
                    peer_id
                ):
                    await self.dht.routing_table.add_peer(peer_id, skip_server_mode_check=True)
                if self.providing and self.dht.routing_table.peer_in_table(peer_id):
                    self._sender(peer_id).enqueue(list(self.providing))
            synced = connected & synced | {
                p for p in connected if self.dht.routing_table.peer_in_table(p)
            }
            await trio.sleep(0.5)

    async def _reprovide_loop(self) -> None:
        while True:
            await trio.sleep(self.options.reprovide_interval)
            keys = list(self.providing)
            self._store_self(keys)
            if keys:
                await self.push(keys)

    # -- resolve ----------------------------------------------------------------------------

    def _is_dead(self, peer_id: ID) -> bool:
        until = self.dead.get(peer_id)
        return until is not None and until > time.monotonic()

    async def _alive(self, info: PeerInfo) -> bool:
        if self.connected(info.peer_id):
            return True
        if self._is_dead(info.peer_id):
            return False
        if self._nursery is None:
            return await self._dial(info)
        # The dial runs in the node's own nursery: a lookup whose short deadline ends first
        # does not cancel it, so the peer is connected for the next lookup instead of every
        # lookup starting (and abandoning) a handshake that takes longer than its budget.
        done = self._dialing.get(info.peer_id)
        if done is None:
            done = self._dialing[info.peer_id] = trio.Event()
            self._nursery.start_soon(self._dial_then_signal, info, done)
        await done.wait()
        return self.connected(info.peer_id)

    async def _dial(self, info: PeerInfo) -> bool:
        if await self._connect(info):
            return True
        self.dead[info.peer_id] = time.monotonic() + DEAD_FOR
        self.dht.routing_table.remove_peer(info.peer_id)
        return False

    async def _dial_then_signal(self, info: PeerInfo, done: trio.Event) -> None:
        try:
            await self._dial(info)
        finally:
            self._dialing.pop(info.peer_id, None)
            done.set()

    async def resolve(
        self, key: str, count: int, timeout: float, emit: Callable[[Peer], Awaitable[None]]
    ) -> None:
        """Call ``emit`` for each live provider of ``key`` (never self, no duplicates), local
        records first, then the network, until ``count`` peers or ``timeout`` seconds."""
        target = key_multihash(key)
        seen: set[ID] = {self.peer_id}
        emitted = 0
        with trio.move_on_after(timeout) as scope:
            async with trio.open_nursery() as nursery:

                async def offer(info: PeerInfo) -> None:
                    nonlocal emitted
                    if not await self._alive(info):
                        return
                    host = ip_of(info.addrs) or ip_of(self.host.get_peerstore().addrs(info.peer_id))
                    if host is None or (count > 0 and emitted >= count):
                        return
                    emitted += 1
                    await emit(Peer(str(info.peer_id), host))
                    if count > 0 and emitted >= count:
                        scope.cancel()

                def consider(infos: Iterable[PeerInfo]) -> None:
                    for info in infos:
                        if info.peer_id in seen or self._is_dead(info.peer_id):
                            continue
                        seen.add(info.peer_id)
                        nursery.start_soon(offer, info)

                consider(self.dht.provider_store.get_providers(target))
                await trio.lowlevel.checkpoint()  # connected local providers go out here
                nursery.start_soon(self._ask_network, target, consider)

    async def _ask_network(self, target: bytes, consider: Callable[[list[PeerInfo]], None]) -> None:
        asked: set[ID] = {self.peer_id}
        table = self.dht.routing_table
        frontier = [p for p in table.find_local_closest_peers(target, K) if not self._is_dead(p)]
        while frontier:
            batch = [p for p in frontier if p not in asked][: self.options.lookup_fanout]
            frontier = [p for p in frontier if p not in asked and p not in batch]
            if not batch:
                return
            closer: list[ID] = []
            async with trio.open_nursery() as nursery:
                for peer_id in batch:
                    asked.add(peer_id)

                    async def ask(peer_id: ID = peer_id, closer: list[ID] = closer) -> None:
                        try:
                            providers, more = await wire.get_providers(self.host, peer_id, target)
                        except Exception as exc:
                            log.debug("GET_PROVIDERS to %s failed: %r", peer_id, exc)
                            return
                        consider(providers)
                        closer.extend(more)

                    nursery.start_soon(ask)
            frontier += [p for p in closer if p not in asked and p not in frontier]
