import importlib
import logging
import types

import pytest
import trio

from routing import libp2p_patches as patches


def test_version_is_pinned() -> None:
    assert patches.check_version() == "0.8.1"


def test_protocol_id_replaced_in_every_module() -> None:
    patches.set_protocol_id()
    for name in patches.PROTOCOL_ID_MODULES:
        assert importlib.import_module(name).PROTOCOL_ID == "/spegel/kad/1.0.0"


def test_record_ttl_is_read_by_the_store() -> None:
    store = importlib.import_module("libp2p.kad_dht.provider_store")
    old = store.PROVIDER_RECORD_EXPIRATION_INTERVAL
    try:
        patches.set_record_ttl(123.0)
        assert store.PROVIDER_RECORD_EXPIRATION_INTERVAL == 123.0
        assert store.PROVIDER_RECORD_REPUBLISH_INTERVAL > 123.0
    finally:
        patches.set_record_ttl(old)


def test_configure_dht_raises_limits() -> None:
    dht = types.SimpleNamespace(
        _provider_rate_max=10, _provider_rate_window=10.0, _inbound_limiter=trio.CapacityLimiter(12)
    )
    patches.configure_dht(dht, provider_rate_max=5000, inbound_streams=777)
    assert dht._provider_rate_max == 5000
    assert dht._inbound_limiter.total_tokens == 777


@pytest.mark.parametrize(
    "missing",
    [
        {"_provider_rate_window": 10.0, "_inbound_limiter": trio.CapacityLimiter(1)},
        {"_provider_rate_max": 10, "_provider_rate_window": 10.0, "_inbound_limiter": 12},
    ],
)
def test_configure_dht_fails_loudly_on_shape_change(missing: dict[str, object]) -> None:
    with pytest.raises(patches.LibraryShapeError, match="py-libp2p changed"):
        patches.configure_dht(
            types.SimpleNamespace(**missing), provider_rate_max=1, inbound_streams=1
        )


def test_missing_module_constant_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    store = importlib.import_module("libp2p.kad_dht.provider_store")
    monkeypatch.delattr(store, "PROVIDER_RECORD_EXPIRATION_INTERVAL")
    with pytest.raises(patches.LibraryShapeError, match="PROVIDER_RECORD_EXPIRATION_INTERVAL"):
        patches.set_record_ttl(60)


def test_real_dht_has_the_patched_shape() -> None:
    from libp2p import new_host
    from libp2p.kad_dht.kad_dht import DHTMode, KadDHT

    dht = KadDHT(new_host(), DHTMode.SERVER)
    patches.configure_dht(dht, provider_rate_max=10**9, inbound_streams=1024)
    assert dht._inbound_limiter.total_tokens == 1024


def test_quiet_loggers() -> None:
    patches.quiet_loggers()
    assert logging.getLogger("libp2p.kad_dht.kad_dht").getEffectiveLevel() == logging.ERROR


class _FakeStream:
    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.reads: list[int] = []
        self.writes: list[bytes] = []
        self.closed = False

    async def read(self, n: int | None = None) -> bytes:
        self.reads.append(n or 0)
        out, self.incoming = self.incoming[: n or None], self.incoming[n or len(self.incoming) :]
        return out

    async def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def close(self) -> None:
        self.closed = True


async def test_buffered_stream_reads_in_bulk_and_joins_prefix_and_body() -> None:
    import varint

    body = b"\x08\x02" + b"k" * 300
    inner = _FakeStream(varint.encode(len(body)) + body)
    stream = patches.BufferedDHTStream(inner)
    prefix = b""
    while True:  # the library's way: one byte at a time
        byte = await stream.read(1)
        prefix += byte
        if not byte[0] & 0x80:
            break
    assert varint.decode_bytes(prefix) == len(body)
    assert await stream.read(len(body)) == body
    assert len(inner.reads) == 1  # one bulk read served all of it
    await stream.write(varint.encode(len(body)))
    assert inner.writes == []  # the prefix waits for its body
    await stream.write(body)
    assert inner.writes == [varint.encode(len(body)) + body]
    await stream.write(b"\x05")  # a lone prefix is flushed on close
    await stream.close()
    assert inner.writes[-1] == b"\x05" and inner.closed


def test_buffer_inbound_streams_reregisters_the_handler() -> None:
    registered: dict[str, object] = {}
    host = types.SimpleNamespace(set_stream_handler=registered.__setitem__)

    async def handle_stream(stream: object) -> None:
        return None

    patches.set_protocol_id()
    patches.buffer_inbound_streams(types.SimpleNamespace(host=host, handle_stream=handle_stream))
    assert list(registered) == [patches.SPEGEL_PROTOCOL_ID]
