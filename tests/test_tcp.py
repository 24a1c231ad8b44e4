"""
The real service (C{makeService} from C{twistd chat}'s options) listening on
127.0.0.1, with several clients at once over real TCP connections: logging
in, rooms, private messages, renames, clients that vanish, telnet clients,
and shutting down.
"""

import socket
import time

import pytest
import pytest_twisted
from twisted.internet import defer

from netclient import TIMEOUT, wait_until

SHUTDOWN_LINE = "-- The server is shutting down. Goodbye!"

# telnet bytes
IAC, DONT, DO, WONT, WILL, SB, SE, IP = 255, 254, 253, 252, 251, 250, 240, 244
ECHO, SGA, TIMING_MARK, TERMINAL_TYPE, NAWS = 1, 3, 6, 24, 31


def pause(seconds: float) -> defer.Deferred:
    """Let the reactor run for C{seconds}."""
    from twisted.internet import reactor, task

    return task.deferLater(reactor, seconds, lambda: None)


def assert_refused(port: int) -> None:
    """Assert that nothing listens on 127.0.0.1:C{port} any more."""
    with socket.socket() as probe:
        probe.settimeout(TIMEOUT)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


@pytest_twisted.inlineCallbacks
def test_three_users_log_in_and_talk_in_the_lobby(chat):
    """Three clients log in at once; each sees the others arrive, and lobby talk reaches everyone but the speaker."""
    server = yield chat("--motd", "Welcome to the test")
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    yield alice.expect("-> bob joined #lobby")
    carol = yield server.connect("carol")
    yield alice.expect("-> carol joined #lobby")
    yield bob.expect("-> carol joined #lobby")
    assert "-- Welcome to the test" in carol.lines
    yield carol.expect("-- Here with you: alice, bob (3 users)")
    assert sorted(server.factory.chat.users) == ["alice", "bob", "carol"]

    alice.say("hello everyone")
    yield bob.expect(lambda line: line == "<alice> hello everyone")
    yield carol.expect(lambda line: line == "<alice> hello everyone")
    bob.say("/me waves")
    yield alice.expect(lambda line: line == "* bob waves")
    yield carol.expect(lambda line: line == "* bob waves")
    yield alice.sync("a1")
    yield bob.sync("b1")
    assert not [l for l in alice.lines if l.startswith("<alice>")]
    assert not [l for l in bob.lines if l.startswith("* bob")]


@pytest_twisted.inlineCallbacks
def test_server_sockets_send_at_once_and_keep_alive(chat):
    """Each accepted socket has TCP_NODELAY (no Nagle delay on chat lines) and SO_KEEPALIVE."""
    server = yield chat()
    yield server.connect("alice")
    transport = server.factory.chat.users["alice"].client.transport
    sock = transport.getHandle()
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


@pytest_twisted.inlineCallbacks
def test_listen_backlog_default_and_option(chat):
    """Listening ports queue LISTEN_BACKLOG connections, or what --listen-backlog says."""
    from chatservice.core.limits import LISTEN_BACKLOG

    default = yield chat()
    assert default.listening.backlog == LISTEN_BACKLOG
    chosen = yield chat("--listen-backlog", "7", "--no-database")
    assert chosen.listening.backlog == 7


@pytest.mark.parametrize("description, expected", [
    ("tcp:8123", "tcp:8123:backlog=64"),
    ("tcp6:8123:interface=\\:\\:1", "tcp6:8123:interface=\\:\\:1:backlog=64"),
    ("unix:/run/chat.sock", "unix:/run/chat.sock:backlog=64"),
    ("ssl:8124:privateKey=k.pem", "ssl:8124:privateKey=k.pem:backlog=64"),
    ("tcp:8123:backlog=5", "tcp:8123:backlog=5"),
    ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0"),
])
def test_with_backlog(description, expected):
    """The backlog is added to endpoint types that take one, unless given."""
    from chatservice.tap import with_backlog

    assert with_backlog(description, 64) == expected


@pytest_twisted.inlineCallbacks
def test_two_rooms_tag_lines_from_the_other_room(chat):
    """Lines from a room that is not the reader's current one carry its [#room] tag; rooms do not leak."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")

    bob.say("/join #games")
    yield bob.expect(lambda line: line == "-> You joined #games")
    yield bob.expect(lambda line: line == "-- You are alone in #games.")
    carol.say("/join games")
    yield carol.expect(lambda line: line == "-> You joined #games")
    yield carol.expect(lambda line: line == "-- Here with you: @bob (2 users)")
    yield bob.expect(lambda line: line == "-> carol joined #games")

    bob.say("let's play")
    yield carol.expect(lambda line: line == "<bob> let's play")
    alice.say("is anyone around?")
    yield bob.expect(lambda line: line == "[#lobby] <alice> is anyone around?")
    yield carol.expect(lambda line: line == "[#lobby] <alice> is anyone around?")
    yield alice.sync("a1")
    assert not [l for l in alice.lines if "let's play" in l]

    # carol switches back to the lobby: now #games is the tagged one for her
    carol.say("/join lobby")
    yield carol.expect(lambda line: line == "-- You are now talking in #lobby.")
    bob.say("deal me in")
    yield carol.expect(lambda line: line == "[#games] <bob> deal me in")
    carol.say("back in the lobby")
    yield alice.expect(lambda line: line == "<carol> back in the lobby")
    yield bob.expect(lambda line: line == "[#lobby] <carol> back in the lobby")

    # leaving the last member closes a room
    bob.say("/leave games")
    yield bob.expect(lambda line: line == "<- You left #games")
    yield carol.expect(lambda line: line == "<- bob left #games")
    carol.say("/leave #games")
    yield carol.expect(lambda line: line == "<- You left #games")
    yield carol.sync("c1")
    assert sorted(server.factory.chat.rooms) == ["lobby"]


@pytest_twisted.inlineCallbacks
def test_private_message_reaches_only_its_target(chat):
    """/msg shows the sender a copy and the target the message; nobody else sees it."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    carol.say("/join elsewhere")
    yield carol.expect("-> You joined #elsewhere")

    alice.say("/msg carol we are in the lobby")
    yield alice.expect(lambda line: line == "[private to carol] <alice> we are in the lobby")
    yield carol.expect(lambda line: line == "[private] <alice> we are in the lobby")
    carol.say("/tell ALICE thanks")
    yield alice.expect(lambda line: line == "[private] <carol> thanks")
    alice.say("/msg nobody hello?")
    yield alice.expect(lambda line: line.startswith("!! No one called 'nobody' is online or registered."))
    yield bob.sync("b1")
    assert not [l for l in bob.lines if "private" in l or "thanks" in l]


@pytest_twisted.inlineCallbacks
def test_nick_tells_the_rooms_and_frees_the_old_name(chat):
    """/nick tells everyone sharing a room, the new name is taken and the old one is free."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")

    bob.say("/nick robert")
    yield bob.expect(lambda line: line == "-- You are now known as robert (was bob).")
    yield alice.expect(lambda line: line == "-- bob is now known as robert")
    yield carol.expect(lambda line: line == "-- bob is now known as robert")
    bob.say("still me")
    yield alice.expect(lambda line: line == "<robert> still me")
    alice.say("/msg Robert hi robert")
    yield bob.expect(lambda line: line == "[private] <alice> hi robert")

    newcomer = yield server.connect()
    newcomer.say("ROBERT")
    yield newcomer.expect(lambda line: line.startswith("!! The name 'ROBERT' is taken."))
    yield newcomer.expect("What's your name?")
    newcomer.say("bob")
    yield newcomer.expect(lambda line: line == "-- Hello bob, welcome to chatservice!")
    yield carol.expect(lambda line: line == "-> bob joined #lobby")
    assert sorted(server.factory.chat.users) == ["alice", "bob", "carol", "robert"]


@pytest_twisted.inlineCallbacks
def test_vanished_clients_are_cleaned_up(chat):
    """A client that closes (FIN or RST) without /quit leaves every room; others see it quit; its name is reusable."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    dave = yield server.connect("dave")
    bob.say("/join games")
    yield bob.expect("-> You joined #games")
    alice.say("/join games")
    yield bob.expect("-> alice joined #games")

    bob.transport.loseConnection()  # FIN, no /quit
    yield bob.wait_closed()
    line = yield alice.expect(lambda line: line.startswith("<- bob quit"))
    assert line == "<- bob quit (connection closed)"
    yield carol.expect(lambda line: line.startswith("<- bob quit"))
    yield alice.sync("a1")
    # one notice even though alice shared two rooms with bob
    assert len([l for l in alice.lines if l.startswith("<- bob quit")]) == 1

    carol.transport.abortConnection()  # RST
    yield carol.wait_closed()
    yield alice.expect(lambda line: line.startswith("<- carol quit"))
    yield dave.expect(lambda line: line.startswith("<- carol quit"))

    yield wait_until(lambda: len(server.factory.chat.clients) == 2)
    assert sorted(server.factory.chat.users) == ["alice", "dave"]
    assert "games" in server.factory.chat.rooms  # alice is still there
    assert [u.name for u in server.factory.chat.rooms["games"].members.values()] == ["alice"]

    bob2 = yield server.connect("bob")
    carol2 = yield server.connect("carol")
    yield alice.expect("-> bob joined #lobby")
    yield alice.expect("-> carol joined #lobby")
    bob2.say("I'm back")
    yield carol2.expect(lambda line: line == "<bob> I'm back")
    yield dave.expect(lambda line: line == "<bob> I'm back")


@pytest_twisted.inlineCallbacks
def test_quit_says_goodbye_and_closes(chat):
    """/quit MESSAGE says goodbye, closes the connection, and the rooms see the message."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    alice.say("/quit see you")
    yield alice.expect(lambda line: line == "-- Goodbye, alice!")
    yield alice.wait_closed()
    yield bob.expect(lambda line: line == "<- alice quit (see you)")
    yield carol.expect(lambda line: line == "<- alice quit (see you)")
    yield wait_until(lambda: len(server.factory.chat.clients) == 2)
    assert sorted(server.factory.chat.users) == ["bob", "carol"]


@pytest_twisted.inlineCallbacks
def test_telnet_client_chats_with_netcat_clients(chat):
    """CRLF, CR NUL and telnet negotiation from one client are filtered and refused while others chat."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    tel = yield server.connect()
    # a telnet client's opening negotiation, then its name with CRLF
    tel.send_raw(bytes([IAC, DO, ECHO, IAC, WILL, NAWS, IAC, DO, SGA,
                        IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]))
    tel.send_raw(b"tel\r\n")
    yield tel.expect(lambda line: line.endswith("-- Hello tel, welcome to chatservice!"))
    yield alice.expect(lambda line: line == "-> tel joined #lobby")
    for refusal in ([IAC, WONT, ECHO], [IAC, DONT, NAWS], [IAC, WONT, SGA]):
        assert bytes(refusal) in tel.raw

    alice.say("hi tel")
    tel.send_raw(b"hello from telnet\r\n")
    bob.say("hi both")
    yield tel.expect(lambda line: line == "<alice> hi tel")
    yield alice.expect(lambda line: line == "<tel> hello from telnet")
    yield bob.expect(lambda line: line == "<tel> hello from telnet")
    yield tel.expect(lambda line: line == "<bob> hi both")

    # a negotiation sequence split across writes, inside a line
    for part in (b"split", bytes([IAC]), bytes([DO]), bytes([TERMINAL_TYPE]), b"line\r\n"):
        tel.send_raw(part)
        yield pause(0.02)
    yield alice.expect(lambda line: line == "<tel> splitline")
    yield tel.sync("t1")
    assert bytes([IAC, WONT, TERMINAL_TYPE]) in tel.raw
    # ^C as telnet sends it (IAC IP, IAC DO TIMING-MARK), then CR NUL
    tel.send_raw(bytes([IAC, IP, IAC, DO, TIMING_MARK]) + b"after ctrl-c\r\0")
    yield alice.expect(lambda line: line == "<tel> after ctrl-c")
    yield tel.sync("t2")
    assert bytes([IAC, WONT, TIMING_MARK]) in tel.raw
    alice.say("still fine")
    yield tel.expect(lambda line: line == "<alice> still fine")
    yield alice.sync("a1")
    yield bob.sync("b1")
    for line in alice.lines + bob.lines:
        assert "\ufffd" not in line and "\x00" not in line, line
    tel.say("/quit")
    yield tel.expect("-- Goodbye, tel!")
    yield tel.wait_closed()
    yield alice.expect(lambda line: line == "<- tel quit")


@pytest_twisted.inlineCallbacks
def test_shutdown_tells_everyone_and_closes_every_connection(chat):
    """stopService tells every connection (logged in or not) goodbye, closes them all at once, and stops listening."""
    from twisted.internet import reactor

    server = yield chat("--shutdown-grace", "3")
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    carol.say("/join games")
    yield carol.expect("-> You joined #games")
    newcomer = yield server.connect()  # still at the name prompt
    assert len(server.factory.chat.clients) == 4

    started = time.monotonic()
    stopped = defer.maybeDeferred(server.service.stopService).addTimeout(TIMEOUT, reactor)
    for client in (alice, bob, carol, newcomer):
        line = yield client.expect(SHUTDOWN_LINE)
        assert line == SHUTDOWN_LINE
        yield client.wait_closed()
    yield stopped
    # clients that read are closed at once, not aborted after the grace period
    assert time.monotonic() - started < 2
    assert server.factory.chat.clients == {}
    assert server.factory.chat.users == {}
    assert not server.listening.connected
    assert_refused(server.port)
    # at shutdown nobody is told about each of the others leaving
    for client in (alice, bob, carol):
        assert not [l for l in client.lines if " quit" in l], client.lines


@pytest_twisted.inlineCallbacks
def test_shutdown_with_nobody_connected_is_immediate(chat):
    """stopService with no connections fires at once and the port stops listening."""
    from twisted.internet import reactor

    server = yield chat()
    started = time.monotonic()
    yield defer.maybeDeferred(server.service.stopService).addTimeout(TIMEOUT, reactor)
    assert time.monotonic() - started < 1
    assert not server.listening.connected
    assert_refused(server.port)


@pytest_twisted.inlineCallbacks
def test_shutdown_aborts_a_client_that_does_not_read(chat):
    """At shutdown a client that stopped reading is aborted after --shutdown-grace, so stopService completes."""
    from twisted.internet import reactor

    from chatservice.frontends.session import pending_output

    grace = 0.5
    # no output cap: only the shutdown grace period can get rid of slowpoke
    server = yield chat("--shutdown-grace", str(grace), "--flood-rate", "0",
                        "--max-output", "0")
    factory = server.factory
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(TIMEOUT)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(b"slowpoke\n")
        yield wait_until(lambda: "slowpoke" in factory.chat.users)
        talker = yield server.connect("talker")
        observer = yield server.connect("observer")
        transport = factory.chat.users["slowpoke"].client.transport

        # Talk until slowpoke's kernel buffers are full and the server keeps
        # output for it even after a pause (output only waits for the
        # reactor's next write otherwise); the observer reads, which paces
        # the talker.
        payload = "x" * 1000
        sent = 0
        while True:
            yield pause(0.05)
            if pending_output(transport) > 0:
                break
            assert sent < 20000, "slowpoke's buffers never filled"
            talker.say(*[f"{n} {payload}" for n in range(sent, sent + 200)])
            sent += 200
            yield observer.expect(f"<talker> {sent - 1} ")
        assert "slowpoke" in factory.chat.users  # not dropped for any other reason

        closed_at = {}
        for client in (talker, observer):
            client.closed.addBoth(
                lambda result, client=client: closed_at.setdefault(client, time.monotonic()))
        started = time.monotonic()
        yield defer.maybeDeferred(server.service.stopService).addTimeout(TIMEOUT, reactor)
        elapsed = time.monotonic() - started
        assert grace * 0.8 <= elapsed < grace + 2
        for client in (talker, observer):
            yield client.expect(SHUTDOWN_LINE)
            yield client.wait_closed()
            # the readers were closed at once, without waiting for the grace period
            assert closed_at[client] - started < grace
        assert factory.chat.clients == {}

        # slowpoke's connection was cut: draining it ends in EOF or a reset
        deadline = time.monotonic() + TIMEOUT
        with pytest.raises((ConnectionResetError, EOFError)):
            while time.monotonic() < deadline:
                if not slow.recv(1 << 20):
                    raise EOFError
        assert time.monotonic() < deadline
    finally:
        slow.close()
