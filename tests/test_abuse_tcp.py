"""
Abuse handling over real TCP connections to a real listening service: a
client that stops reading, a flooder, the connection limits and the timeouts.
"""

import socket

import pytest_twisted

from chatservice.frontends.session import pending_output
from netclient import connect_client, wait_until

@pytest_twisted.inlineCallbacks
def test_slow_reader_dropped_others_served(chat):
    """A client that never reads is dropped at the output cap; the room keeps talking."""
    server = yield chat("--flood-rate", "0")  # default cap: 1 MiB
    factory = server.factory
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"slowpoke\n")
    try:
        yield wait_until(lambda: "slowpoke" in factory.chat.users)
        talker = yield server.connect("talker")
        observer = yield server.connect("observer")
        slow_protocol = factory.chat.users["slowpoke"].client
        worst = [0]

        def watch():
            worst[0] = max(worst[0], pending_output(slow_protocol.transport))
            return "slowpoke" not in factory.chat.users

        payload = "x" * 1000
        count = 8000
        # The observer reads in this same process: pace the talker on it so
        # that only the client that never reads falls behind.
        for start in range(0, count, 200):
            talker.say(*[f"{n} {payload}" for n in range(start, start + 200)])
            yield observer.expect(f"<talker> {start + 199} ")
            watch()
        yield wait_until(watch)
        received = [l for l in observer.lines if l.startswith("<talker>")]
        assert len(received) == count
        assert "<- slowpoke quit (not reading: output buffer full)" in observer.lines
        # bounded: never more than the cap plus one read's worth of lines
        assert 0 < worst[0] <= 1024 * 1024 + 128 * 1024
    finally:
        slow.close()


@pytest_twisted.inlineCallbacks
def test_flooder_throttled_then_dropped(chat):
    """A flood gets a warning, then a disconnect; the others keep chatting."""
    server = yield chat("--flood-burst", "5", "--flood-rate", "1", "--flood-kick", "20")
    flooder = yield server.connect("flooder")
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    flooder.say(*[f"spam {n}" for n in range(500)])
    yield flooder.expect("Slow down")
    yield flooder.expect("You were disconnected for flooding.")
    yield flooder.wait_closed()
    yield alice.expect("<- flooder quit (flooding)")
    spam = [l for l in alice.lines if l.startswith("<flooder>")]
    assert 1 <= len(spam) <= 5
    bob.say("still works?")
    yield alice.expect("<bob> still works?")


@pytest_twisted.inlineCallbacks
def test_connection_limits(chat):
    """Over --max-connections and --max-per-address a newcomer is told why and closed."""
    server = yield chat("--max-connections", "3", "--max-per-address", "2")
    _first = yield server.connect()
    _second = yield server.connect()
    third = yield connect_client(server.port, expect_prompt=False)
    line = yield third.expect("Too many connections")
    assert line == "-- Too many connections from your address (2 at most). Close one and try again."
    yield third.wait_closed()
    assert len(server.factory.chat.clients) == 2


@pytest_twisted.inlineCallbacks
def test_server_full(chat):
    """Past --max-connections the next connection gets 'server is full'."""
    server = yield chat("--max-connections", "1", "--max-per-address", "0")
    _first = yield server.connect()
    second = yield connect_client(server.port, expect_prompt=False)
    line = yield second.expect("full")
    assert line == "-- The server is full (1 connections). Please try again later."
    yield second.wait_closed()


@pytest_twisted.inlineCallbacks
def test_login_and_idle_timeouts(chat):
    """A silent newcomer and an idle user are told and disconnected."""
    server = yield chat("--login-timeout", "0.3", "--idle-timeout", "0.6")
    newcomer = yield server.connect()
    idler = yield server.connect("idler")
    yield newcomer.expect("You took too long to choose a name.")
    yield newcomer.wait_closed()
    yield idler.expect("You were idle for more than 0.6 seconds.")
    yield idler.wait_closed()
    assert server.factory.chat.users == {}
    assert newcomer.lines[-1] == "-- You took too long to choose a name. Goodbye!"
