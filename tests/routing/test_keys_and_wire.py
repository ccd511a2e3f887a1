import hashlib

import pytest
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from routing import wire
from routing.router import key_multihash


@pytest.mark.parametrize(
    ("key", "digest_hex"),
    [
        ("hello world", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ],
)
def test_key_multihash_known_vectors(key: str, digest_hex: str) -> None:
    assert key_multihash(key) == bytes.fromhex("1220" + digest_hex)


def test_key_multihash_matches_cidv1_raw_sha256() -> None:
    # A Spegel key longer than the 80-byte ADD_PROVIDER limit still becomes 34 bytes.
    key = "docker.io/library/nginx@sha256:" + "a" * 64
    mh = key_multihash(key)
    assert len(mh) == 34
    assert mh[2:] == hashlib.sha256(key.encode()).digest()


def test_add_provider_frames_round_trip() -> None:
    me = ID.from_base58("12D3KooWEGs8Z7sqm3H2JUkvHCNcLR1rUVk2k9KaLoeC3yoPd2Ee")
    keys = [key_multihash(f"k{i}") for i in range(300)]
    data = bytearray(wire.add_provider_frames(keys, me, [Multiaddr("/ip4/127.0.0.2/tcp/5001")]))
    half = bytearray(data[:1001])
    first = wire.split_frames(half)
    assert 0 < len(first) < 300
    rest = wire.split_frames(half + data[1001:])
    frames = first + rest
    assert len(frames) == 300
    message = Message()
    message.ParseFromString(frames[299])
    assert message.type == Message.MessageType.ADD_PROVIDER
    assert message.key == keys[299]
    assert ID(message.providerPeers[0].id) == me
    assert Multiaddr(message.providerPeers[0].addrs[0]) == Multiaddr("/ip4/127.0.0.2/tcp/5001")


def test_split_frames_keeps_incomplete_tail() -> None:
    buffer = bytearray(b"\x03abc\x05ab")
    assert wire.split_frames(buffer) == [b"abc"]
    assert buffer == bytearray(b"\x05ab")
