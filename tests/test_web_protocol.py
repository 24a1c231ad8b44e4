"""
The web front end's WebSocket protocol, on a L{task.Clock}: real handshakes
and frames over a L{StringTransport} (see L{webclient}), the chat shared
with line-protocol users.
"""

import json

import pytest
from twisted.internet import task

from chatservice.core.limits import Limits
from chatservice.frontends.web.factory import WebChatFactory
from conftest import FakeClient, make_factory
from webclient import FakeWebClient


@pytest.fixture
def clock():
    return task.Clock()


def web(clock, **options):
    """A line factory and a web factory sharing one chat on C{clock}."""
    line = make_factory(clock, **options)
    return line, WebChatFactory(line.chat, allowed_origins=["https://friend.test"])


def logged_in(factory, name, **kwargs):
    client = FakeWebClient(factory, **kwargs)
    client.send({"type": "login", "name": name})
    assert client.take("welcome")[0]["name"] == name
    return client


def test_hello_then_login_lands_in_the_default_room(clock):
    """The server greets with its protocol version; a login gets the room, its members and state."""
    _, factory = web(clock)
    client = FakeWebClient(factory)
    assert client.status.startswith("HTTP/1.1 101")
    [hello] = client.take()
    assert hello == {"type": "hello", "version": 1, "server": "chatservice", "accounts": False}
    client.send({"type": "login", "name": "alice"})
    got = client.take()
    kinds = [m["type"] for m in got]
    assert kinds[0] == "welcome" and "room" in kinds and kinds[-1] == "state"
    room = next(m for m in got if m["type"] == "room")
    assert room["room"] == "lobby" and room["members"] == [{"name": "alice", "prefix": ""}]
    assert got[-1]["rooms"] == ["lobby"] and got[-1]["current"] == "lobby"


def test_web_and_telnet_users_talk_in_one_room(clock):
    """A line said on the page reaches telnet, and back; the sender sees their own line."""
    line, factory = web(clock)
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    bob.take()
    alice.take()
    alice.send({"type": "input", "text": "hello <img src=x onerror=alert(1)>"})
    assert "<alice> hello <img src=x onerror=alert(1)>" in bob.take()
    [echo] = alice.take("said")
    assert echo["sender"] == "alice" and echo["text"] == "hello <img src=x onerror=alert(1)>"
    bob.send("hi alice")
    [said] = alice.take("said")
    assert (said["room"], said["sender"], said["text"]) == ("lobby", "bob", "hi alice")


def test_a_batch_is_one_frame_holding_a_list(clock):
    """Several lines in one read from telnet reach a web member as one frame, a JSON list."""
    line, factory = web(clock)
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    alice.take()
    before = len(alice.text_frames())
    bob.protocol.dataReceived(b"one\ntwo\nthree\n")
    frames = alice.text_frames()[before:]
    assert len(frames) == 1
    assert [m["text"] for m in json.loads(frames[0])] == ["one", "two", "three"]


def test_slash_commands_work_as_on_telnet(clock):
    """/join, /me, /who and an unknown command, typed in the page."""
    line, factory = web(clock)
    alice = logged_in(factory, "alice")
    alice.send({"type": "input", "text": "/join games"})
    got = alice.take()
    room = next(m for m in got if m["type"] == "room")
    assert room["room"] == "games" and room["members"] == [{"name": "alice", "prefix": "@"}]
    assert got[-1]["type"] == "state" and got[-1]["current"] == "games"
    alice.send({"type": "input", "text": "/who"})
    assert any("alice (#lobby, @#games)" in m["text"] or "alice" in m["text"]
               for m in alice.take("info"))
    alice.send({"type": "input", "text": "/look"})
    assert [m["text"] for m in alice.take("info")] == [
        "You are in #games.", "1 user here: @alice"]
    alice.send({"type": "input", "text": "/me waves"})
    assert alice.take("acted")[0]["text"] == "waves"
    alice.send({"type": "input", "text": "/jion x"})
    [error] = alice.take("error")
    assert "Unknown command /jion. Did you mean /join?" in error["text"]


def test_private_messages_both_ways(clock):
    """msg to a telnet user, and /msg from them arrives as a private message."""
    line, factory = web(clock)
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    alice.send({"type": "msg", "to": "bob", "text": "psst"})
    assert "[private] <alice> psst" in bob.take()
    [echo] = alice.take("private")
    assert (echo["sender"], echo["recipient"], echo["text"]) == ("alice", "bob", "psst")
    bob.send("/msg alice hi back")
    [got] = alice.take("private")
    assert (got["sender"], got["recipient"], got["text"]) == ("bob", "alice", "hi back")


def test_bad_messages_are_explained_and_the_connection_stays(clock):
    """Bad JSON, a non-object, an unknown type, a missing field, chatting before login."""
    _, factory = web(clock)
    client = FakeWebClient(factory)
    client.take()
    client.send({"type": "say", "text": "hi"})
    assert "Log in first" in client.take("error")[0]["text"]
    for raw in (b"{not json", b"[1, 2]", b'"text"', b'{"type": 5}'):
        client.send_raw(raw)
        assert "JSON object" in client.take("error")[0]["text"]
    client.send({"type": "login", "name": "alice"})
    client.send({"type": "frobnicate"})
    assert "Unknown message type" in client.take("error")[0]["text"]
    client.send({"type": "join"})
    assert "needs \"room\"" in client.take("error")[0]["text"]
    client.send({"type": "login", "name": "bob"})
    assert "already logged in" in client.take("error")[0]["text"]
    assert not client.closing
    client.send_raw(b"\xff\xfe")  # a text frame must be UTF-8: the WebSocket's own rule
    assert client.close_code() == 1007


def test_a_taken_or_invalid_name_asks_again(clock):
    """The same name rules as telnet: the refusal, then a login prompt."""
    _, factory = web(clock)
    logged_in(factory, "alice")
    client = FakeWebClient(factory)
    client.send({"type": "login", "name": "ALICE"})
    got = client.take()
    assert any(m["type"] == "error" and "taken" in m["text"] for m in got)
    assert got[-1] == {"type": "login"}
    client.send({"type": "login", "name": "<img src=x>"})
    assert client.take()[-1] == {"type": "login"}


def test_another_sites_page_is_refused(clock):
    """Origin must be the page's own (or allowed): cross-site WebSocket hijacking."""
    _, factory = web(clock)
    evil = FakeWebClient(factory, origin="http://evil.test")
    assert evil.status.startswith("HTTP/1.1 403")
    assert evil.session is None
    assert FakeWebClient(factory, origin="https://chat.test").status.startswith("HTTP/1.1 101")
    assert FakeWebClient(factory, origin="https://friend.test").status.startswith("HTTP/1.1 101")
    assert FakeWebClient(factory, origin="null").status.startswith("HTTP/1.1 4")
    # a bot sends no Origin at all: no browser page is involved
    assert FakeWebClient(factory, origin=None).status.startswith("HTTP/1.1 101")


def test_an_oversize_message_closes_the_connection(clock):
    """Past the frame cap the WebSocket closes with 1009 (message too big)."""
    line = make_factory(clock)
    factory = WebChatFactory(line.chat, max_frame=1000)
    client = logged_in(factory, "alice")
    client.send({"type": "input", "text": "x" * 900})
    assert not client.closing
    client.send({"type": "input", "text": "x" * 1000})
    assert client.close_code() == 1009


def test_the_login_timeout(clock):
    """A page that never logs in is told why and closed."""
    _, factory = web(clock, limits=Limits(login_timeout=30))
    client = FakeWebClient(factory)
    clock.advance(29)
    assert not client.closing
    clock.advance(2)
    assert "took too long" in client.take("bye")[0]["text"]
    assert client.close_code() == 1000


def test_flood_control_warns_then_disconnects(clock):
    """The same flood control as telnet: a warning, silent drops, then the door."""
    line, factory = web(clock, limits=Limits(flood_burst=5, flood_rate=1, flood_kick=3))
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    bob.take()
    for i in range(10):
        alice.send({"type": "input", "text": f"line {i}"})
    said = [line for line in bob.take() if line.startswith("<alice>")]
    assert 1 <= len(said) <= 5
    got = alice.take()
    assert any(m["type"] == "error" and "Slow down" in m["text"] for m in got)
    assert any(m["type"] == "bye" and "flooding" in m["text"] for m in got)
    assert "alice" not in line.chat.users


def test_a_client_that_stops_reading_is_dropped(clock):
    """Past the output cap while the transport says 'pause', the connection is aborted."""
    line, factory = web(clock, limits=Limits(max_output=2000, flood_rate=0))
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    alice.session.pauseProducing()  # what a TCP transport does when its buffer is full
    for i in range(5):
        bob.send("x" * 150)
    assert not alice.transport.disconnected
    for i in range(20):
        bob.send("x" * 150)
    assert alice.transport.disconnected  # aborted
    assert "alice" not in line.chat.users


def test_leaving_the_connection_logs_out(clock):
    """A closed WebSocket leaves no ghost: the room is told."""
    line, factory = web(clock)
    alice = logged_in(factory, "alice")
    bob = FakeClient(line)
    bob.send("bob")
    bob.take()
    alice.lose()
    assert "alice" not in line.chat.users
    assert any("alice" in text and "quit" in text for text in bob.take())


def test_a_connection_past_the_limits_is_told_why_in_a_frame(clock):
    """Admission is the chat's: past --max-per-address the page gets a bye message and a close."""
    line, factory = web(clock, limits=Limits(max_per_address=1))
    logged_in(factory, "alice")
    refused = FakeWebClient(factory)
    [bye] = refused.take()
    assert bye["type"] == "bye" and "Too many connections" in bye["text"]
    assert refused.close_code() == 1000
