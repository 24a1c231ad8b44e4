"""
The line protocol over L{StringTransport}: logging in, what a user sees
after login, disconnection, input framing, encoding and sanitising, errors
inside the server, and shutdown.
"""

import re
from typing import List

import pytest
from conftest import FakeClient, make_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task
from twisted.logger import globalLogPublisher

from chatservice.core.limits import Limits
from chatservice.service import SHUTDOWN_MESSAGE, ChatService

ASK = "What's your name?"
WELCOME = [
    "-- Hello alice, welcome to testchat!",
    "-- Be nice.",
    "-- Type /help for the commands; anything else you type is said to your room.",
    "-> You joined #lobby",
]
SORRY = "!! Sorry, something went wrong on the server; it has been logged."


def newcomer(factory, host: str = "127.0.0.1") -> FakeClient:
    """A fresh connection at the name prompt, greeting already read."""
    client = FakeClient(factory, host=host)
    assert client.take() == ["-- Welcome to testchat!", ASK]
    return client


def assert_clean_bytes(data: bytes) -> None:
    """No ESC and no C0 control other than CR LF pairs; valid UTF-8 without C1."""
    assert b"\x1b" not in data
    stripped = data.replace(b"\r\n", b"")
    assert not re.search(rb"[\x00-\x1f\x7f]", stripped), data
    text = data.decode("utf-8")
    assert not re.search("[\x80-\x9f\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]", text), text


# -- logging in ---------------------------------------------------------------------


def test_greeting_asks_for_name(factory):
    """A new connection is greeted with the server name and asked its name."""
    client = FakeClient(factory)
    assert client.lines() == ["-- Welcome to testchat!", ASK]
    assert client.protocol.state == "naming"
    assert client.user is None


def test_login_with_bare_name(factory):
    """A bare name logs in: hello, MOTD, help hint, joined lobby, alone."""
    client = newcomer(factory)
    client.send("alice")
    assert client.take() == WELCOME + ["-- You are alone in #lobby."]
    assert client.protocol.state == "chatting"
    assert factory.chat.users["alice"] is client.user


@pytest.mark.parametrize("line", ["login alice", "/login alice", "LOGIN alice", "  login   alice  "])
def test_login_command_forms(factory, line):
    """'login NAME' and '/login NAME' log in as NAME."""
    client = newcomer(factory)
    client.send(line)
    assert client.take()[0] == "-- Hello alice, welcome to testchat!"
    assert client.user.name == "alice"


def test_slash_login_without_name_is_usage_error(factory):
    """'/login' alone explains the usage and leaves the user at the prompt."""
    client = newcomer(factory)
    client.send("/login")
    assert client.take() == ["!! Usage: login NAME. What's your name?"]
    assert client.protocol.state == "naming"


def test_multi_line_motd_and_no_motd(clock):
    """Each MOTD line is its own notice; with no MOTD there is no empty notice."""
    factory = make_factory(clock=clock, server_name="testchat", motd="Line one\nLine two")
    client = newcomer(factory)
    client.send("alice")
    assert client.take()[:3] == [
        "-- Hello alice, welcome to testchat!", "-- Line one", "-- Line two"]
    bare = make_factory(clock=clock, server_name="bare")
    other = FakeClient(bare)
    other.take()
    other.send("bob")
    assert other.take()[:2] == [
        "-- Hello bob, welcome to bare!",
        "-- Type /help for the commands; anything else you type is said to your room.",
    ]


def test_others_see_arrival_and_newcomer_sees_them(connect):
    """Login places the user in #lobby; members see '-> NAME joined #lobby'."""
    alice = connect("alice")
    bob = connect()
    bob.take()
    bob.send("bob")
    assert bob.take()[-2:] == ["-> You joined #lobby", "-- Here with you: alice (2 users)"]
    assert alice.take() == ["-> bob joined #lobby"]
    assert bob.user.current.name == "lobby"


def test_custom_default_room(clock):
    """The default room is where users land, whatever it is called."""
    factory = make_factory(clock=clock, server_name="testchat", default_room="main")
    client = newcomer(factory)
    client.send("alice")
    assert "-> You joined #main" in client.take()
    assert client.user.current is factory.chat.default_room


@pytest.mark.parametrize(
    "raw, error",
    [
        ("x" * 25, "That name is 25 characters long; the limit is 24."),
        ("bad name", "A name may only contain letters, digits, '_' and '-' (not ' ')."),
        ("bad!", "A name may only contain letters, digits, '_' and '-' (not '!')."),
        ("a.b@c", "A name may only contain letters, digits, '_' and '-' (not '.' '@')."),
        ("\x1b[31m", "A name cannot be empty."),
        ("\u202e\u200b", "A name cannot be empty."),
        ("\x07", "A name cannot be empty."),
        ("server", "The name 'server' is reserved."),
        ("Admin", "The name 'Admin' is reserved."),
        ("ROOT", "The name 'ROOT' is reserved."),
        ("ａｄｍｉｎ", "The name 'admin' is reserved."),
        ("login admin", "The name 'admin' is reserved."),
    ],
)
def test_invalid_name_explained_and_asked_again(factory, raw, error):
    """An invalid name is refused with the reason, and the question is asked again."""
    client = newcomer(factory)
    client.send(raw)
    assert client.take() == [f"!! {error} Please choose another name.", ASK]
    assert client.protocol.state == "naming"
    client.send("carol")
    assert client.user.name == "carol"


def test_longest_name_accepted(factory):
    """A name of exactly 24 characters is accepted."""
    client = newcomer(factory)
    client.send("n" * 24)
    assert client.user.name == "n" * 24


@pytest.mark.parametrize(
    "attempt, shown",
    [
        ("alice", "alice"),
        ("Alice", "Alice"),
        ("ALICE", "ALICE"),
        ("ａｌｉｃｅ", "alice"),  # fullwidth: NFKC makes it alice
        ("al\u200bice", "alice"),  # zero-width space removed
        ("\x1b[1malice", "alice"),  # escape removed
        ("/login ALICE", "ALICE"),
    ],
)
def test_taken_names_case_and_width_insensitive(connect, factory, attempt, shown):
    """A name taken regardless of case, width or invisible characters is refused."""
    connect("alice")
    client = newcomer(factory)
    client.send(attempt)
    assert client.take() == [f"!! The name {shown!r} is taken. Please choose another name.", ASK]
    assert client.protocol.state == "naming"
    assert len(factory.chat.users) == 1


def test_taken_name_blocks_by_original_case(connect, factory):
    """'Alice' logged in blocks 'alice' too."""
    connect("Alice")
    client = newcomer(factory)
    client.send("alice")
    assert client.take() == ["!! The name 'alice' is taken. Please choose another name.", ASK]


def test_sanitised_name_is_what_others_see(connect, factory):
    """Escapes and bidi controls are stripped from a name before anyone sees it."""
    alice = connect("alice")
    client = newcomer(factory)
    client.send("\x1b[31m\u202ebob\x1b[0m")
    assert client.user.name == "bob"
    assert alice.take() == ["-> bob joined #lobby"]


def test_invisible_letter_cannot_impersonate(connect, factory):
    """A name that differs from a taken one only by a blank-rendering letter is refused."""
    connect("alice")
    client = newcomer(factory)
    client.send("alice\u3164")
    assert client.protocol.state == "naming"


@pytest.mark.parametrize("line", ["/quit", "quit", "/exit", "logout", "/QUIT bye"])
def test_quit_at_name_prompt(factory, line):
    """Quitting at the name prompt says goodbye and closes the connection."""
    client = newcomer(factory)
    client.send(line)
    assert client.take() == ["-- Goodbye!"]
    assert client.closed
    client.send("alice")
    assert client.take() == []
    assert factory.chat.users == {}


@pytest.mark.parametrize("line", ["/help", "help"])
def test_help_at_name_prompt(factory, line):
    """Help at the name prompt explains what to type and keeps asking."""
    client = newcomer(factory)
    client.send(line)
    assert client.take() == [
        "-- Type the name you want to be known by, for example: alice",
        "-- (letters, digits, '_' and '-'; or type /quit to leave)",
    ]
    assert client.protocol.state == "naming"


@pytest.mark.parametrize("line", ["/join games", "/who", "/nick bob", "/msg bob hi", "/"])
def test_commands_refused_at_name_prompt(factory, line):
    """Chat commands before a name are refused and the question asked again."""
    client = newcomer(factory)
    client.send(line)
    assert client.take() == ["!! Please choose a name first. What's your name?"]
    assert client.protocol.state == "naming"
    assert factory.chat.rooms.keys() == {"lobby"}


def test_blank_lines_at_name_prompt_ignored(factory):
    """Empty and whitespace-only lines at the name prompt produce nothing."""
    client = newcomer(factory)
    client.send("", "   ", "\t")
    assert client.take() == []
    assert client.protocol.state == "naming"


def test_failed_login_leaves_no_ghost(clock):
    """A login that fails while entering the default room does not hold the name."""
    factory = make_factory(clock=clock, server_name="testchat",
                          limits=Limits(flood_rate=0, max_room_name_length=3))
    client = newcomer(factory)
    client.send("alice")
    assert client.protocol.state == "naming"
    client.lose()
    assert factory.chat.users == {}


# -- disconnection without /quit --------------------------------------------------------


def test_disconnect_without_quit_cleans_up(connect, factory):
    """A vanished client leaves no ghost: users, members, empty rooms all cleaned."""
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    bob.send("/join games", "/join solo", "/join games")
    alice.send("/join games")
    carol.take()
    alice.take()
    bob.lose()
    assert alice.take() == ["<- bob quit (connection closed)"]
    assert carol.take() == ["<- bob quit (connection closed)"]
    assert "bob" not in factory.chat.users
    assert bob.protocol not in factory.chat.clients
    for room in factory.chat.rooms.values():
        assert "bob" not in room.members
    assert set(factory.chat.rooms) == {"lobby", "games"}  # #solo was emptied and removed
    assert list(factory.chat.rooms["games"].members) == ["alice"]


def test_neighbour_in_two_rooms_told_of_quit_once(connect):
    """Someone sharing two rooms with the quitter is told once."""
    alice, bob = connect("alice"), connect("bob")
    alice.send("/join games")
    bob.send("/join games")
    alice.take()
    bob.lose()
    assert alice.take() == ["<- bob quit (connection closed)"]


def test_name_free_again_after_disconnect(connect, factory):
    """After a client vanishes its name can be taken by someone else."""
    bob = connect("bob")
    bob.lose()
    again = newcomer(factory)
    again.send("BOB")
    assert again.user.name == "BOB"


def test_disconnect_at_name_prompt(factory):
    """A connection closed before login is forgotten and tells nobody."""
    client = newcomer(factory)
    client.lose()
    assert factory.chat.clients == {}
    assert factory.chat.users == {}


def test_lines_after_quit_in_same_read_ignored(connect):
    """Lines that arrive after /quit in the same read are not said."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"/quit bye\nthis must not be said\n")
    assert alice.take() == ["<- bob quit (bye)"]


# -- input framing ------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r", b"\r\x00"])
def test_line_endings(connect, eol):
    """LF, CRLF, CR and CR NUL each end a line."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"one" + eol + b"two" + eol)
    assert alice.take() == ["<bob> one", "<bob> two"]


def test_mixed_line_endings_in_one_read(connect):
    """Many lines with mixed endings in one read are all delivered, in order."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"a\nb\r\nc\rd\r\x00e\n")
    assert alice.take() == ["<bob> a", "<bob> b", "<bob> c", "<bob> d", "<bob> e"]


@pytest.mark.parametrize("eol", [b"\r\n", b"\r\x00"])
def test_two_byte_line_end_split_across_reads(connect, eol):
    """CRLF or CR NUL split between reads ends exactly one line."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"first" + eol[:1])
    bob.feed(eol[1:] + b"second" + eol)
    assert alice.take() == ["<bob> first", "<bob> second"]


def test_byte_by_byte(connect):
    """A line fed one byte per read (UTF-8 split mid-character) arrives whole."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    for byte in "héllo wörld ☃\r\n".encode("utf-8"):
        bob.feed(bytes([byte]))
    assert alice.take() == ["<bob> héllo wörld ☃"]


def test_line_split_over_many_reads(connect):
    """A line arriving in arbitrary pieces is delivered once, when it ends."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    for piece in (b"th", b"is is ", b"one ", b"li", b"ne"):
        bob.feed(piece)
        assert alice.take() == []
    bob.feed(b"\n")
    assert alice.take() == ["<bob> this is one line"]


def test_many_lines_in_one_read(connect):
    """Hundreds of lines in one read all arrive, in order."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"".join(b"line %d\n" % i for i in range(500)))
    assert alice.take() == [f"<bob> line {i}" for i in range(500)]


def test_empty_lines_ignored(connect):
    """Empty and blank lines say nothing and get no error."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"\n\r\n\r\n\n   \n\t\n")
    assert alice.take() == []
    assert bob.take() == []


def test_line_at_max_length_accepted(connect):
    """A line of exactly MAX_LENGTH bytes is delivered."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    limit = bob.protocol.MAX_LENGTH
    bob.feed(b"x" * limit + b"\n")
    assert alice.take() == ["<bob> " + "x" * limit]


def test_over_long_line_refused_connection_usable(connect):
    """A line over MAX_LENGTH is refused with a message; the next line works."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    limit = bob.protocol.MAX_LENGTH
    bob.feed(b"x" * (limit + 1) + b"\n")
    assert bob.take() == [
        f"!! That line was too long (over {limit} bytes) and was not sent. "
        "Please split it into shorter lines."
    ]
    assert alice.take() == []
    bob.feed(b"short\n")
    assert alice.take() == ["<bob> short"]
    assert not bob.closed


def test_over_long_line_at_name_prompt(factory):
    """An over-long line at the name prompt is refused; the prompt still works."""
    client = newcomer(factory)
    client.feed(b"n" * (client.protocol.MAX_LENGTH + 10) + b"\n")
    assert client.take()[0].startswith("!! That line was too long")
    client.send("alice")
    assert client.user.name == "alice"


def test_huge_chunk_without_newline_is_not_buffered(connect):
    """A megabyte with no newline keeps the buffer bounded; the line after it works."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    limit = bob.protocol.MAX_LENGTH
    for _ in range(16):
        bob.feed(b"y" * 65536)
        assert len(bob.protocol._buffer) <= limit
    assert len(bob.take()) == 1  # reported once
    bob.feed(b"rest of the monster line\nnormal line\n")
    assert alice.take() == ["<bob> normal line"]
    assert bob.take() == []


def test_partial_line_below_limit_kept(connect):
    """A partial line under the limit is kept until its end arrives."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    limit = bob.protocol.MAX_LENGTH
    bob.feed(b"z" * limit)
    assert len(bob.protocol._buffer) == limit
    bob.feed(b"\n")
    assert alice.take() == ["<bob> " + "z" * limit]


def test_split_crlf_counts_as_one_line_for_flood_control(clock):
    """A CRLF split across reads is charged as one line, not two."""
    factory = make_factory(clock=clock, server_name="testchat",
                          limits=Limits(flood_burst=3, flood_rate=1))
    alice, bob = FakeClient(factory), FakeClient(factory)
    alice.send("alice")
    bob.send("bob")
    alice.take()
    bob.take()
    clock.advance(10)  # full bucket
    for data in (b"a\r", b"\n", b"b\r", b"\n", b"c\r", b"\n"):
        bob.feed(data)
    assert alice.take() == ["<bob> a", "<bob> b", "<bob> c"]
    assert bob.take() == []


# -- encoding and sanitising ---------------------------------------------------------------


def test_invalid_utf8_is_replaced(connect):
    """Invalid UTF-8 becomes U+FFFD and the session goes on."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"caf\xc3 \x80ok \xed\xa0\x80\n")
    assert alice.take() == ["<bob> caf\ufffd \ufffdok \ufffd\ufffd\ufffd"]
    assert bob.take() == []
    bob.feed(b"fine\n")
    assert alice.take() == ["<bob> fine"]


@pytest.mark.parametrize(
    "typed, seen",
    [
        ("\x1b[31mred\x1b[0m text", "red text"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),
        ("\x1b[10;1Hmoved", "moved"),
        ("\x1b]0;pwned\x07title", "title"),
        ("evil\u202eoverride", "eviloverride"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("bell\x07 back\x08space \x00nul", "bell backspace nul"),
        ("c1\x9b31m control", "c1 control"),
        ("tab\there", "tab here"),
    ],
)
def test_relayed_text_is_sanitised(connect, typed, seen):
    """Escapes, controls, bidi and zero-width characters never reach others."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.send(typed)
    assert alice.take() == [f"<bob> {seen}"]
    assert_clean_bytes(alice.output())


def test_text_that_is_only_controls_says_nothing(connect):
    """A line that is empty after sanitising is not relayed and is not an error."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.send("\x1b[2J", "\x07\x07", "\u202e")
    assert alice.take() == []
    assert bob.take() == []


def test_every_server_line_ends_in_crlf(connect):
    """Whatever line endings a client uses, everything sent back ends in CRLF."""
    alice, bob = connect("alice"), connect("bob")
    bob.feed(b"a\rb\nc\r\x00/who\r\n/look\n")
    for client in (alice, bob):
        data = client.output()
        assert data.endswith(b"\r\n")
        assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")


text_typed = st.lists(
    st.one_of(
        # any character that UTF-8 can carry, but no line end
        st.characters().filter(
            lambda char: char not in "\r\n" and not "\ud800" <= char <= "\udfff"),
        st.sampled_from(["\x1b", "\x1b[", "\x1b]0;", "[", "]", "2J", "31m", "\x07",
                         "\x9b", "\u202e", "\u200b", "\x00", "\x7f", "\t", "\u2028",
                         "\x85", "hi"]),
    ),
    min_size=1, max_size=20,
).map("".join)


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(text_typed, min_size=1, max_size=4))
def test_others_never_get_escape_or_controls(texts):
    """Whatever bob types as text, /me, /msg, /topic or a /quit reason, alice gets clean bytes."""
    clock = task.Clock()
    factory = make_factory(clock=clock, limits=Limits(flood_rate=0))
    alice, bob = FakeClient(factory), FakeClient(factory)
    alice.send("alice")
    bob.send("bob")
    for text in texts:
        for command in ("/say ", "/me ", "/msg alice ", "/topic ", "x ", "/nick ", "/join "):
            bob.send(command + text)
    bob.send("/quit " + texts[0])
    assert_clean_bytes(alice.output())
    last = alice.lines()[-1]
    assert last.startswith("<- ") and " quit" in last


# -- errors inside the server ---------------------------------------------------------------


def test_server_error_reported_and_session_continues(connect, factory, monkeypatch):
    """An exception in the factory becomes one apology line; the user keeps chatting."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    events: List[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        def boom(*args, **kwargs):
            raise RuntimeError("kaboom")

        monkeypatch.setattr(factory.chat, "say", boom)
        bob.send("hello")
        assert bob.take() == [SORRY]
        assert not bob.closed
        monkeypatch.undo()
        bob.send("hello again", "/ping ok")
        assert bob.take() == ["PONG ok"]
        assert alice.take() == ["<bob> hello again"]
    finally:
        globalLogPublisher.removeObserver(events.append)
    failures = [e for e in events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)


def test_server_error_in_command_reported(connect, factory, monkeypatch):
    """An exception inside a command handler is an apology, not a disconnect."""
    bob = connect("bob")

    def boom(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(factory.chat, "find_user", boom)
    bob.send("/who alice", "/ping")
    assert bob.take() == [SORRY, "PONG"]
    assert not bob.closed


def test_server_error_at_login_reported(factory, monkeypatch):
    """An exception during login is an apology; the user can try again."""
    client = newcomer(factory)
    original = factory.chat.login
    monkeypatch.setattr(factory.chat, "login", lambda *a: 1 / 0)
    client.send("alice")
    assert client.take() == [SORRY]
    monkeypatch.setattr(factory.chat, "login", original)
    client.send("alice")
    assert client.user.name == "alice"


def test_error_in_one_read_keeps_later_lines(connect, factory, monkeypatch):
    """Replies to the lines after a failing one in the same read are still sent."""
    _alice, bob = connect("alice"), connect("bob")
    calls = []

    def flaky(user, text, action=False):
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("first call fails")

    monkeypatch.setattr(factory.chat, "say", flaky)
    bob.feed(b"one\ntwo\n/ping three\n")
    assert bob.take() == [SORRY, "PONG three"]
    assert calls == ["one", "two"]


# -- shutdown ---------------------------------------------------------------------------


def record_aborts(client: FakeClient) -> List[bool]:
    """Replace the transport's abortConnection with a recorder (not every
    StringTransport version has one)."""
    calls: List[bool] = []
    transport = client.transport

    def abortConnection() -> None:
        calls.append(True)
        transport.disconnecting = True
        transport.disconnected = True

    transport.abortConnection = abortConnection
    return calls


def test_shutdown_with_nobody_fires_at_once(factory, clock):
    """With no connection the shutdown Deferred has already fired."""
    fired = []
    factory.chat.shutdown("Bye", 2.0).addCallback(fired.append)
    assert fired == [None]
    assert clock.getDelayedCalls() == []


def test_shutdown_tells_everyone_and_waits_for_them(connect, factory, clock):
    """Every client is told the message and closed; the Deferred fires when all are gone."""
    alice, bob = connect("alice"), connect("bob")
    pending = FakeClient(factory)  # still at the name prompt
    for client in (alice, bob, pending):
        client.take()
    aborts = [record_aborts(c) for c in (alice, bob, pending)]
    fired = []
    factory.chat.shutdown("The server is shutting down. Goodbye!", 2.0).addCallback(fired.append)
    for client in (alice, bob, pending):
        assert client.take() == ["-- The server is shutting down. Goodbye!"]
        assert client.transport.disconnecting
    alice.protocol.connectionLost(None)
    bob.protocol.connectionLost(None)
    assert fired == []
    pending.protocol.connectionLost(None)
    assert fired == [None]
    # nobody was told of the others' quits, and nobody was aborted
    assert alice.take() == bob.take() == []
    assert aborts == [[], [], []]
    assert factory.chat.users == {} and factory.chat.clients == {}
    assert clock.getDelayedCalls() == []  # grace timer cancelled


def test_shutdown_aborts_clients_that_never_close(connect, factory, clock):
    """After the grace period, connections still open are aborted; then the Deferred fires."""
    alice, bob = connect("alice"), connect("bob")
    alice_aborts, bob_aborts = record_aborts(alice), record_aborts(bob)
    fired = []
    factory.chat.shutdown("Bye", 5.0).addCallback(fired.append)
    alice.protocol.connectionLost(None)
    clock.advance(4.9)
    assert bob_aborts == [] and fired == []
    clock.advance(0.1)
    assert bob_aborts == [True]
    assert alice_aborts == []
    assert fired == []
    bob.protocol.connectionLost(None)  # what an aborted transport does next
    assert fired == [None]


def test_shutdown_refuses_newcomers(connect, factory):
    """During shutdown a new connection is told to come back later and closed."""
    connect("alice")
    factory.chat.shutdown("Bye", 2.0)
    late = FakeClient(factory)
    assert late.lines() == ["-- The server is shutting down. Please come back later."]
    assert late.closed
    late.protocol.connectionLost(None)


def test_shutdown_deferred_fires_once(connect, factory, clock):
    """The Deferred fires exactly once even if connections are lost twice."""
    alice = connect("alice")
    fired = []
    factory.chat.shutdown("Bye", 1.0).addCallback(fired.append)
    alice.protocol.connectionLost(None)
    alice.protocol.connectionLost(None)
    clock.advance(10)
    assert fired == [None]


def test_service_stop_shuts_the_factory_down(clock):
    """Stopping the service tells users the shutdown message and aborts after the grace period."""
    factory = make_factory(clock=clock, server_name="testchat",
                          limits=Limits(flood_rate=0, shutdown_grace=3.0))
    alice = FakeClient(factory)
    alice.send("alice")
    alice.take()
    aborts = record_aborts(alice)
    service = ChatService(factory.chat)
    service.startService()
    fired = []
    service.stopService().addCallback(fired.append)
    assert not service.running
    assert alice.take() == ["-- " + SHUTDOWN_MESSAGE]
    clock.advance(2.9)
    assert aborts == []
    clock.advance(0.1)
    assert aborts == [True]
    alice.protocol.connectionLost(None)
    assert fired == [None]
