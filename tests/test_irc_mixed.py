"""
Telnet and IRC users in the same rooms of one chat: each sees the other's
lines, actions, joins, parts, quits, renames and topics in its own front
end's words; and the IRCv3 capabilities that change what is sent
(server-time, echo-message, batch history).  Also the core's part: the
events' times and saying in a named room.
"""

import pytest
from twisted.internet import defer

from chatservice.core import errors, events
from chatservice.frontends.irc.render import IRCRenderer
from chatservice.persistence.records import HistoryLine
from ircclient import IRCFakeClient, irc_factory

#: 2026-12-01 12:00:00 UTC, as the fake clock's time.
NOON = 1796126400.0
NOON_TAG = "@time=2026-12-01T12:00:00.000Z"


@pytest.fixture
def ircf(factory):
    return irc_factory(factory)


@pytest.fixture
def irc(ircf):
    """Return C{connect(nick, *before)}: an IRC client registered after the C{before} lines, in #lobby."""

    def connect(nick: str, *before: str) -> IRCFakeClient:
        client = IRCFakeClient(ircf)
        client.register(nick, *before)
        if before:
            client.send("CAP END")
        client.send("JOIN #lobby")
        client.take()
        return client

    return connect


def test_lines_and_actions_cross_both_ways(irc, connect):
    """A telnet line reaches IRC as PRIVMSG and an IRC PRIVMSG reaches telnet as <nick>; /me and CTCP ACTION map onto each other; nobody gets their own line back."""
    bob = connect("bob")
    alice = irc("alice")
    bob.take()
    bob.send("hi alice", "/me waves")
    assert alice.take() == [":bob!~bob@testchat PRIVMSG #lobby :hi alice",
                            ":bob!~bob@testchat PRIVMSG #lobby :\x01ACTION waves\x01"]
    alice.send("PRIVMSG #lobby :hi bob", "PRIVMSG #lobby :\x01ACTION bows\x01")
    assert bob.take() == ["<alice> hi bob", "* alice bows"]
    assert alice.take() == []  # no echo without echo-message


def test_presence_crosses_both_ways(irc, connect):
    """Joins, parts, renames, topics and quits of telnet users reach IRC as JOIN, PART, NICK, TOPIC and QUIT, and the other way round."""
    alice = irc("alice")
    bob = connect("bob")
    assert alice.take() == [":bob!~bob@testchat JOIN :#lobby"]
    bob.send("/nick bobby", "/topic hello", "/join games", "/leave games", "/leave lobby")
    assert alice.take() == [":bob!~bob@testchat NICK :bobby",
                            ":bobby!~bobby@testchat TOPIC #lobby :hello",
                            ":bobby!~bobby@testchat PART :#lobby"]
    bob.send("/join lobby")
    alice.take()
    bob.take()
    alice.send("NICK alicia", "TOPIC #lobby :bye", "PART #lobby :later", "JOIN #lobby")
    assert bob.take() == ["-- alice is now known as alicia",
                          "-- alicia set the topic of #lobby: bye",
                          "<- alicia left #lobby (later)",
                          "-> alicia joined #lobby"]
    bob.send("/quit night")
    assert alice.take()[-1] == ":bobby!~bobby@testchat QUIT :Quit: night"


def test_private_messages_cross_both_ways(irc, connect):
    """/msg from telnet reaches IRC as a PRIVMSG to the nick, and PRIVMSG nick reaches telnet as [private]."""
    bob = connect("bob")
    alice = irc("alice")
    bob.send("/msg alice psst", "/msg alice /me nods")
    assert alice.take() == [":bob!~bob@testchat PRIVMSG alice :psst",
                            ":bob!~bob@testchat PRIVMSG alice :/me nods"]
    bob.take()
    alice.send("PRIVMSG bob :\x01ACTION winks\x01", "PRIVMSG BOB :hey")
    assert bob.take() == ["[private] * alice winks", "[private] <alice> hey"]


def test_lobby_is_the_default_room(irc, connect):
    """Telnet users land in the default room, which IRC users see as #lobby with them in it."""
    bob = connect("bob")
    carol = irc("carol")
    carol.send("NAMES #lobby")
    assert carol.take()[0] == ":testchat 353 carol = #lobby :bob carol"
    assert bob.user.current.name == "lobby"


def test_room_events_are_encoded_once_for_all_irc_members(irc, connect, monkeypatch):
    """Three IRC members of a room get one encoding of each event between them."""
    clients = [irc(nick) for nick in ("a1", "a2", "a3")]
    for client in clients:
        client.take()
    calls = []
    original = IRCRenderer.encode

    def counting(self, event, focused):
        calls.append(event)
        return original(self, event, focused)

    monkeypatch.setattr(IRCRenderer, "encode", counting)
    bob = connect("bob")
    bob.send("one line")
    assert [type(event) for event in calls] == [events.Joined, events.Said]
    assert all(client.take()[-1].endswith("PRIVMSG #lobby :one line") for client in clients)


def test_server_time_tags_room_and_private_events(irc, connect, clock):
    """With server-time, room lines, joins and private messages carry @time=...; without it, none do."""
    clock.advance(NOON)
    timed = irc("alice", "CAP REQ :server-time")
    plain = irc("carol")
    bob = connect("bob")
    bob.send("tick", "/msg alice tock")
    lines = timed.take()
    assert lines == [f"{NOON_TAG} :carol!~carol@testchat JOIN :#lobby",
                     f"{NOON_TAG} :bob!~bob@testchat JOIN :#lobby",
                     f"{NOON_TAG} :bob!~bob@testchat PRIVMSG #lobby :tick",
                     f"{NOON_TAG} :bob!~bob@testchat PRIVMSG alice :tock"]
    assert all(not line.startswith("@") for line in plain.take())


def test_echo_message(irc, connect, clock):
    """With echo-message the sender gets its own PRIVMSG once (to a channel and to a nick), with its time under server-time."""
    clock.advance(NOON)
    bob = connect("bob")
    alice = irc("alice", "CAP REQ :echo-message server-time")
    bob.take()
    alice.send("PRIVMSG #lobby :hello", "PRIVMSG bob :direct")
    assert alice.take() == [f"{NOON_TAG} :alice!~alice@testchat PRIVMSG #lobby :hello",
                            f"{NOON_TAG} :alice!~alice@testchat PRIVMSG bob :direct"]
    assert bob.take() == ["<alice> hello", "[private] <alice> direct"]


class FakeRecent:
    """A room's stored lines, read at once (the chat's L{RecentHistory} without a store)."""

    def __init__(self, lines) -> None:
        self.stored = lines
        self.size = len(lines)

    def lines(self, key, count):
        return defer.succeed(self.stored[-count:])

    def record(self, *args) -> None:
        pass

    def forget(self, key) -> None:
        pass


def test_history_replay_is_a_chathistory_batch(ircf, factory):
    """With batch and server-time, JOIN is followed by the room's last lines in a chathistory batch, each with its time; without batch, by NOTICEs marked with the time under --irc-history-notices, and by nothing without it."""
    factory.chat.recent = FakeRecent([
        HistoryLine(1, NOON, "say", "bob", "earlier"),
        HistoryLine(2, NOON + 60, "act", "bob", "left for lunch"),
        HistoryLine(3, NOON + 61, "topic", "bob", "food"),
    ])
    factory.chat.clock.advance(NOON + 120)
    alice = IRCFakeClient(ircf)
    alice.register("alice", "CAP REQ :batch server-time", "CAP END")
    alice.take()
    alice.send("JOIN #lobby")
    lines = alice.take()
    assert lines[-5:] == [
        ":testchat BATCH +h1 chathistory :#lobby",
        "@batch=h1;time=2026-12-01T12:00:00.000Z :bob!~bob@testchat PRIVMSG #lobby :earlier",
        "@batch=h1;time=2026-12-01T12:01:00.000Z :bob!~bob@testchat PRIVMSG #lobby "
        ":\x01ACTION left for lunch\x01",
        "@batch=h1;time=2026-12-01T12:01:01.000Z :testchat NOTICE #lobby "
        ":bob set the topic: food",
        ":testchat BATCH :-h1",
    ]
    dave = IRCFakeClient(ircf)
    dave.register("dave")
    dave.send("JOIN #lobby")
    assert dave.take()[-1].endswith(" 366 dave #lobby :End of /NAMES list")
    ircf.history_notices = True
    carol = IRCFakeClient(ircf)
    carol.register("carol")
    carol.send("JOIN #lobby")
    assert carol.take()[-3:] == [
        ":testchat NOTICE #lobby :[12:00 UTC] <bob> earlier",
        ":testchat NOTICE #lobby :[12:01 UTC] * bob left for lunch",
        ":testchat NOTICE #lobby :[12:01 UTC] bob set the topic: food",
    ]


def test_offline_registered_recipient_is_explained(irc, factory):
    """PRIVMSG to a registered nick that is offline is kept, and a NOTICE says so."""

    class Store:
        offline_waiting: dict = {}
        max_offline = 100

        def queue_offline(self, *args):
            return defer.succeed(True)

        recorded: list = []

        def record_private(self, *args):
            self.recorded.append(args)

    class Accounts:
        def is_registered(self, key):
            return key == "dora"

    factory.chat.store, factory.chat.accounts = Store(), Accounts()
    alice = irc("alice")
    alice.send("PRIVMSG dora :see you")
    assert alice.take() == [":testchat NOTICE alice :dora is offline; they will get your "
                            "message when they next log in."]
    # Kept for dora's account (part of her conversation), not for alice, a guest.
    assert [args[:2] for args in Store.recorded] == [("dora", "alice")]


def test_core_events_carry_their_time_and_say_names_its_room(factory, connect, clock):
    """The core stamps each event with the clock's time, and say/set_topic in a named room need the user to be in it."""
    clock.advance(NOON)
    chat = factory.chat
    bob = connect("bob")
    seen = []
    bob.protocol.deliver = seen.append
    carol = connect("carol")
    carol.send("/msg bob hi")
    assert seen[0].when == NOON and isinstance(seen[0], events.Private)
    games, _ = chat.join(carol.user, "games")
    with pytest.raises(errors.NotInRoom):
        chat.say(bob.user, "intruding", room=games)
    with pytest.raises(errors.NotInRoom):
        chat.set_topic(bob.user, "mine", room=games)
    lobby = chat.rooms["lobby"]
    chat.say(carol.user, "to the lobby", room=lobby)  # not carol's current room
    assert bob.take()[-1] == "<carol> to the lobby"
    chat.set_topic(carol.user, "lobby topic", room=lobby)
    assert (lobby.topic, games.topic, lobby.topic_set_at) == ("lobby topic", "", NOON)


def test_busy_room_presence_reaches_irc_as_join_and_part_lines(irc, connect, factory, clock):
    """In a busy room, the batched notice of arrivals and departures reaches IRC members as one JOIN or PART line each."""
    factory.chat.limits.busy_room_size = 2
    alice = irc("alice")
    connect("bob")
    connect("carol")
    dave = connect("dave")
    alice.take()
    clock.advance(factory.chat.limits.busy_room_interval)
    assert alice.take() == [":carol!~carol@testchat JOIN :#lobby",
                            ":dave!~dave@testchat JOIN :#lobby"]
    dave.send("/quit")
    clock.advance(factory.chat.limits.busy_room_interval)
    assert alice.take() == [":dave!~dave@testchat PART :#lobby"]


def test_long_telnet_lines_are_split_for_irc(irc, connect, factory):
    """A telnet line longer than IRC's 512 bytes reaches IRC as several PRIVMSGs of 512 bytes at most, cut at spaces, with nothing lost."""
    bob = connect("bob")
    alice = irc("alice")
    words = " ".join(f"word{n}" for n in range(250))  # about 1,700 bytes
    bob.send(words, "/me " + words)
    lines = alice.take()
    assert len(lines) > 4
    assert all(len(line.encode()) + 2 <= 512 for line in lines)
    said = [line.split(" :", 1)[1] for line in lines if "\x01" not in line]
    acted = [line.split(" :", 1)[1] for line in lines if "\x01" in line]
    assert " ".join(said) == words
    assert all(piece.startswith("\x01ACTION ") and piece.endswith("\x01") for piece in acted)
    assert " ".join(piece[8:-1] for piece in acted) == words


def test_echoed_parameters_cannot_break_the_line(irc):
    """A nick with a space (given as a trailing parameter) is echoed in a numeric without breaking its line into more parameters."""
    alice = irc("alice")
    alice.send("WHOIS :a b", "PRIVMSG :x\ry :hi")
    lines = alice.take()
    assert lines[0] == ":testchat 401 alice ab :No such nick/channel"
    assert all("\r" not in line for line in lines)


def test_offline_message_not_kept_is_explained(irc, factory):
    """When the store could not keep a message for an offline registered nick, a NOTICE says why."""

    class Store:
        offline_waiting = {"dora": 100}
        max_offline = 100

        def queue_offline(self, *args):
            return defer.succeed(False)

    class Accounts:
        def is_registered(self, key):
            return key == "dora"

    factory.chat.store, factory.chat.accounts = Store(), Accounts()
    alice = irc("alice")
    alice.send("PRIVMSG dora :see you")
    [line] = alice.take()
    assert line.startswith(":testchat NOTICE alice :dora is offline and your message was "
                           "not kept: 100 messages already wait for them.")

