"""
The web front end's own reading of plain client frames (L{frames}), and
that whatever it leaves to autobahn (control frames, fragments, bad UTF-8,
partial frames) still gets autobahn's handling, in order.
"""

import json
import os
import struct

import pytest
from twisted.internet import task

from chatservice.core.limits import Limits
from chatservice.frontends.web.factory import WebChatFactory
from chatservice.frontends.web.frames import (
    frame_payload, partial_text_frame, split_text_frames, text_frame, unmask)
from conftest import FakeClient, make_factory
from webclient import CLOSE, PING, PONG, TEXT, FakeWebClient, client_frame


@pytest.fixture
def clock():
    return task.Clock()


def fragment(payload: bytes, opcode: int, final: bool) -> bytes:
    """One masked frame of a fragmented message."""
    mask = os.urandom(4)
    head = struct.pack("!BB", (0x80 if final else 0) | opcode, 0x80 | len(payload))
    return head + mask + unmask(payload, mask)


def test_unmask_undoes_a_clients_mask():
    payload = "héllo wörld, a longer text".encode()
    frame = client_frame(payload)
    assert unmask(frame[6:], frame[2:6]) == payload
    assert unmask(b"", b"abcd") == b""


def test_plain_frames_are_read_and_the_rest_is_left_where_it_starts():
    one, two = client_frame(b'{"a":1}'), client_frame("ü".encode())
    ping = client_frame(b"hi", PING)
    texts, used = split_text_frames(one + two + ping + one, 0)
    assert texts == ['{"a":1}', "ü"] and used == len(one + two)
    # a partial frame, a frame over the cap, bad UTF-8, an unmasked frame
    assert split_text_frames(one[:-1], 0) == ([], 0)
    assert split_text_frames(one + client_frame(b"x" * 200), 100) == (['{"a":1}'], len(one))
    assert split_text_frames(client_frame(b"\xff\xfe"), 0) == ([], 0)
    assert split_text_frames(b"\x81\x02hi", 0) == ([], 0)


def test_lengths_of_every_size_and_only_the_shortest_encoding():
    for size in (0, 125, 126, 65535, 65536):
        payload = b"x" * size
        texts, used = split_text_frames(client_frame(payload), 0)
        assert texts == ["x" * size] and used == len(client_frame(payload))
        assert frame_payload(text_frame(payload)) == payload
    long_for_short = struct.pack("!BBH", 0x81, 0x80 | 126, 5) + b"\0\0\0\0" + b"hello"
    assert split_text_frames(long_for_short, 0) == ([], 0)


def test_a_plain_frame_cut_short_is_recognised_at_every_cut():
    for payload in (b"x" * 5, b"y" * 300, b"z" * 70000):
        frame = client_frame(payload)
        for cut in sorted({1, 2, 3, 4, 5, 6, 9, 10, 13, 14, len(frame) - 1}):
            if cut >= len(frame):
                continue
            assert partial_text_frame(frame[:cut], 0), (len(payload), cut)
        assert not partial_text_frame(frame, 0)  # whole: not a start
        assert not partial_text_frame(frame[:-1], len(payload) - 1)  # over the cap
    # not a plain masked text frame: left to autobahn
    assert not partial_text_frame(b"", 0)
    assert not partial_text_frame(client_frame(b"p", PING)[:3], 0)
    assert not partial_text_frame(fragment(b"abc", TEXT, False)[:3], 0)
    assert not partial_text_frame(b"\x81\x05hel", 0)  # unmasked
    long_for_short = b"\x81\xfe\x00\x05"
    assert not partial_text_frame(long_for_short, 0)


def logged_in(factory, name):
    client = FakeWebClient(factory)
    client.send({"type": "login", "name": name})
    client.take()
    return client


def web_and_line_users(clock, **options):
    """alice on the web and bob on telnet, in the lobby, their greetings read."""
    line = make_factory(clock, **options)
    alice = logged_in(WebChatFactory(line.chat), "alice")
    bob = FakeClient(line)
    bob.send("bob")
    bob.take()
    return alice, bob


def test_many_messages_in_one_read_with_a_ping_between_stay_in_order(clock):
    """Frames read here and a ping left to autobahn: answered in the order sent."""
    alice, bob = web_and_line_users(clock)
    frames = [client_frame(json.dumps({"type": "input", "text": f"line {i}"}).encode())
              for i in range(5)]
    alice.protocol.dataReceived(b"".join(frames[:2]) + client_frame(b"p", PING)
                                + b"".join(frames[2:]))
    assert [line for line in bob.take() if "line" in line] == [
        f"<alice> line {i}" for i in range(5)]
    alice._collect()
    assert (PONG, b"p") in alice.frames
    # the sender sees its own lines, in the order said, as the room's members do
    assert [m["text"] for m in alice.take("said")] == [f"line {i}" for i in range(5)]


def test_a_message_split_over_reads_and_a_fragmented_one(clock):
    """What this module does not read whole goes to autobahn, which joins the pieces."""
    alice, bob = web_and_line_users(clock)
    frame = client_frame(json.dumps({"type": "input", "text": "split"}).encode())
    alice.protocol.dataReceived(frame[:5])
    alice.protocol.dataReceived(frame[5:] + client_frame(b'{"type":"input","text":"next"}'))
    text = b'{"type":"input","text":"in pieces"}'
    alice.protocol.dataReceived(fragment(text[:10], TEXT, False) + fragment(text[10:], 0, True))
    assert [line for line in bob.take() if line.startswith("<alice>")] == [
        "<alice> split", "<alice> next", "<alice> in pieces"]


def test_reads_that_end_inside_frames_keep_every_message_on_the_fast_path(clock):
    """
    A sender's reads end anywhere: the start of a frame waits for the next
    read here (autobahn never gets a frame to finish, so it never takes
    over), and every message arrives once, in order, at every cut.
    """
    alice, bob = web_and_line_users(clock, limits=Limits(flood_rate=0))
    stream = b"".join(client_frame(json.dumps({"type": "input", "text": f"m{i}"}).encode())
                      for i in range(40))
    cuts = [0, 1, 2, 3, 7, 8, 30, 31, 64, 100, 101, 102, 200, 333, 600, len(stream)]
    for start, stop in zip(cuts, cuts[1:]):
        alice.protocol.dataReceived(stream[start:stop])
        assert alice.protocol.current_frame is None and not alice.protocol.data
    assert [line for line in bob.take() if line.startswith("<alice>")] == [
        f"<alice> m{i}" for i in range(40)]
    # one byte at a time
    for byte in range(len(stream)):
        alice.protocol.dataReceived(stream[byte:byte + 1])
    assert [line for line in bob.take() if line.startswith("<alice>")] == [
        f"<alice> m{i}" for i in range(40)]


def test_a_held_frame_start_then_a_control_frame_goes_to_autobahn_in_order(clock):
    alice, bob = web_and_line_users(clock)
    frame = client_frame(b'{"type":"input","text":"held"}')
    ping = client_frame(b"p", PING)
    alice.protocol.dataReceived(frame[:9])
    alice.protocol.dataReceived(frame[9:] + ping[:3])
    alice.protocol.dataReceived(ping[3:] + client_frame(
        b'{"type":"input","text":"after"}'))
    assert [line for line in bob.take() if line.startswith("<alice>")] == [
        "<alice> held", "<alice> after"]
    alice._collect()
    assert (PONG, b"p") in alice.frames


def test_bad_utf8_after_good_frames_closes_with_1007_after_them(clock):
    line = make_factory(clock)
    factory = WebChatFactory(line.chat)
    alice = logged_in(factory, "alice")
    good = client_frame(b'{"type":"input","text":"fine"}')
    alice.protocol.dataReceived(good + client_frame(b"\xff\xfe") + good)
    assert [m["text"] for m in alice.take("said")] == ["fine"]
    assert alice.close_code() == 1007


def test_nothing_is_written_after_the_close_frame(clock):
    """A client's close: the room's later lines are not sent after the close frame."""
    line = make_factory(clock)
    factory = WebChatFactory(line.chat)
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    alice.protocol.dataReceived(client_frame(struct.pack("!H", 1000), CLOSE))
    bob.send("are you there?")
    alice._collect()
    opcodes = [opcode for opcode, _ in alice.frames]
    assert CLOSE in opcodes and opcodes[-1] == CLOSE
