"""
permessage-deflate (RFC 7692) on the web front end: offered by browsers,
accepted with each server message compressed on its own, so that a room's
frame is compressed once and is the same bytes for every member.
"""

import json
import zlib

import pytest
from twisted.internet import task

from chatservice.core.limits import Limits
from chatservice.frontends.web.deflate import MIN_DEFLATE, deflate_frame, inflate_payload
from chatservice.frontends.web.factory import WebChatFactory
from chatservice.frontends.web.frames import text_frame
from conftest import make_factory
from webclient import FakeWebClient, client_frame, server_frames

OFFER = "permessage-deflate; client_max_window_bits"


@pytest.fixture
def web():
    line = make_factory(task.Clock(), limits=Limits(flood_rate=0))
    return WebChatFactory(line.chat, max_frame=4096)


def logged_in(factory, name, extensions=OFFER):
    client = FakeWebClient(factory, extensions=extensions)
    client.send({"type": "login", "name": name})
    client.take()
    return client


def compressed_client_frame(payload: bytes, bits: int = 15) -> bytes:
    """A masked text frame from a client that compresses (RSV1) with a 2**bits window."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frame = client_frame(data[:-4])
    return bytes([0xC1]) + frame[1:]


def test_the_offer_is_accepted_and_each_server_message_stands_alone(web):
    client = FakeWebClient(web, extensions=OFFER)
    assert "Sec-WebSocket-Extensions: permessage-deflate" in client.handshake
    assert "server_no_context_takeover" in client.handshake
    plain = FakeWebClient(web)
    assert "Sec-WebSocket-Extensions" not in plain.handshake
    # a browser's offer (client_max_window_bits): asked for a small window
    assert "client_max_window_bits=11" in client.handshake
    bare = FakeWebClient(web, extensions="permessage-deflate")
    assert "client_max_window_bits" not in bare.handshake


def test_a_message_compressed_in_the_small_window_is_read(web):
    alice, bob = logged_in(web, "alice"), logged_in(web, "bob")
    text = " ".join(f"word{i % 37}" for i in range(80))
    alice.protocol.dataReceived(compressed_client_frame(
        json.dumps({"type": "input", "text": text}).encode(), bits=11))
    assert [m["text"] for m in bob.take("said")] == [text]


def test_a_rooms_lines_are_compressed_once_and_read_the_same_as_plain_ones(web):
    alice, bob = logged_in(web, "alice"), logged_in(web, "bob")
    carol = logged_in(web, "carol", extensions=None)
    for client in (alice, bob, carol):
        client.transport.clear()
    text = "a line long enough to be worth compressing, " * 4
    alice.protocol.dataReceived(b"".join(client_frame(json.dumps(
        {"type": "input", "text": f"{text}{i}"}).encode()) for i in range(10)))
    raw_bob, raw_carol = bob.transport.value(), carol.transport.value()
    assert raw_bob[0] == 0xC1 and raw_carol[0] == 0x81  # RSV1 only where negotiated
    assert raw_bob == alice.transport.value()  # the same bytes for every member
    assert len(raw_bob) * 5 < len(raw_carol)
    said = [[m["text"] for m in c.take("said")] for c in (alice, bob, carol)]
    assert said[0] == said[1] == said[2] == [f"{text}{i}" for i in range(10)]


def test_short_messages_go_uncompressed(web):
    alice = logged_in(web, "alice")
    alice.transport.clear()
    alice.send({"type": "ping", "token": "t"})
    frames, _ = server_frames(alice.transport.value())
    assert alice.transport.value()[0] == 0x81 and len(frames[0][1]) < MIN_DEFLATE


def test_compressed_and_plain_messages_from_the_client_are_read_in_order(web):
    """Plain frames (RSV1 clear) are uncompressed messages, read on the fast path."""
    alice, bob = logged_in(web, "alice"), logged_in(web, "bob")
    squeezed = [compressed_client_frame(b'{"type":"input","text":"squeezed %d"}' % i)
                for i in range(3)]
    plain = [client_frame(b'{"type":"input","text":"plain %d"}' % i) for i in range(3)]
    stream = b"".join(x for pair in zip(squeezed, plain) for x in pair)
    for start in range(0, len(stream), 7):  # reads that end anywhere
        alice.protocol.dataReceived(stream[start:start + 7])
    assert [m["text"] for m in bob.take("said")] == [
        f"{kind} {i}" for i in range(3) for kind in ("squeezed", "plain")]


def test_a_message_that_inflates_past_the_limit_closes_with_1009(web):
    alice = logged_in(web, "alice")
    alice.protocol.dataReceived(compressed_client_frame(
        b'{"type":"input","text":"' + b"x" * 5000 + b'"}'))
    assert alice.close_code() == 1009
    assert alice.transport.disconnecting  # no waiting for a close reply


def test_deflate_frame_round_trips_and_passes_others_through():
    payload = json.dumps([{"type": "said", "text": "x" * 300}]).encode()
    frame = text_frame(payload)
    squeezed = deflate_frame(frame)
    assert squeezed[0] == 0xC1 and len(squeezed) < len(frame)
    (_, data), = server_frames(squeezed)[0]
    assert data == payload
    assert inflate_payload(squeezed[2:]) == payload
    assert deflate_frame(frame, 10) is not squeezed  # another window: compressed again
    close = b"\x88\x02\x03\xe8"
    assert deflate_frame(close) is close


def test_corrupt_compressed_data_closes_with_1007_and_others_go_on(web):
    alice = logged_in(web, "alice")
    frame = client_frame(b"\xff\xfe\xfd not deflate at all")
    alice.protocol.dataReceived(bytes([0xC1]) + frame[1:])
    assert alice.close_code() == 1007
    bob = logged_in(web, "bob")
    bob.send({"type": "ping", "token": "t"})
    assert bob.take("pong")
