"""
Registered rooms (issue 13): /room register, info, transfer and drop with
every refusal, over L{StringTransport} clients of a chat on a real
L{ChatStore}; what the store keeps and reads back (real SQLite); a full
database that loses the writes without stopping the chat; and the admin
shell's helpers.
"""

import pytest
import pytest_twisted
from conftest import FakeClient, make_factory
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher

from chatservice.admin.namespace import make_namespace
from chatservice.core.chat import Chat
from chatservice.core.limits import Limits
from chatservice.core.registry import RoomRecord
from chatservice.frontends.line.commands import ChatCommands
from chatservice.persistence.store import ChatStore
from dbfile import query
from netclient import wait, wait_until

PASSWORD = "Zebra-Quartz-417"
REGISTERED = ("#games is now registered to you: its operators, bans, modes and topic are "
              "kept across restarts, and it stays when empty. /room transfer NAME gives it "
              "to another registered user; /room drop ends the registration.")


class Site:
    """A chat over a real store on the real reactor, and its clients."""

    def __init__(self, path, **limits) -> None:
        from twisted.internet import reactor

        self.store = ChatStore(str(path), reactor)
        loaded = self.store.open()
        self.factory = make_factory(
            clock=reactor, store=self.store, stored_topics=loaded.topics,
            stored_rooms=loaded.rooms,
            limits=Limits(flood_rate=0, login_timeout=0, **limits),
            run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
        self.chat = self.factory.chat
        self.clients = []

    def guest(self, name: str) -> FakeClient:
        """A guest called C{name}, logged in and in the lobby."""
        client = FakeClient(self.factory)
        self.clients.append(client)
        client.send(name)
        assert client.user is not None, client.lines()
        client.take()
        return client

    @defer.inlineCallbacks
    def member(self, name: str):
        """A registered user called C{name} (registered with /register), in the lobby."""
        client = self.guest(name)
        client.send(f"/register {PASSWORD}")
        yield wait_until(lambda: client.user.registered)
        client.take()
        return client

    def close(self) -> defer.Deferred:
        for client in self.clients:
            if not client.closed:
                client.lose()
        return wait(self.store.close())


@pytest.fixture
def site(tmp_path):
    """A L{Site} in C{tmp_path}, closed at the end."""
    opened = []

    def make(**limits) -> Site:
        made = Site(tmp_path / "chat.db", **limits)
        opened.append(made)
        return made

    yield make
    for made in opened:
        if made.store.writer_running:
            pytest_twisted.blockon(made.close())


@pytest.fixture
def logged():
    """Every message logged during the test, formatted."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield lambda: [formatEvent(event) for event in events]
    globalLogPublisher.removeObserver(events.append)


@defer.inlineCallbacks
def founded(site):
    """alice (registered) registered #games; bob (registered) and carol (a guest) are in it."""
    alice = yield site.member("alice")
    bob = yield site.member("bob")
    carol = site.guest("carol")
    for client in (alice, bob, carol):
        client.send("/join games")
    alice.send("/room register")
    assert alice.take()[-1] == "-- " + REGISTERED
    bob.take()
    carol.take()
    return alice, bob, carol


# -- registering and its refusals -------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_register_and_info(site, logged):
    """The operator of a room who is a registered user registers it; /room info shows it; it is logged."""
    s = site()
    alice, bob, carol = yield founded(s)
    room = s.chat.rooms["games"]
    assert room.registration.founder == "alice" and room.persistent
    assert room.registration.operators == set()
    bob.send("/room info")
    [line] = bob.take()
    assert line.startswith("-- #games is registered to alice (since 20")
    assert line.endswith("UTC): its operators, bans, modes and topic are kept, and it stays "
                         "when empty. Operators kept: none besides the founder.")
    bob.send("/room")
    assert bob.take() == [line]
    carol.send("/room info #lobby")
    assert carol.take() == ["-- #lobby is the server's default room: it always exists, "
                            "and is not registered to anyone."]
    carol.send("/join other", "/room info")
    assert carol.take()[-1] == (
        "-- #other is not registered: it closes when its last member leaves. Its operators "
        "who are registered users can type /room register in it to keep it.")
    assert "rooms: alice registered #games" in logged()


@pytest_twisted.inlineCallbacks
def test_register_refusals(site):
    """Each refusal says why and what would work."""
    s = site(max_registered_rooms=1)
    alice, bob, carol = yield founded(s)
    carol.send("/join mine", "/room register")
    assert carol.take()[-1] == (
        "!! Only registered users can register a room: type /register PASSWORD to register "
        "your name first, then /room register in #mine.")
    bob.send("/room register")
    assert bob.take() == ["!! #games is already registered to alice: type /room info to see "
                          "its registration."]
    bob.send("/join lobby", "/room register")
    assert bob.take()[-1] == ("!! #lobby is the server's default room and cannot be "
                              "registered: /join another room to register it.")
    bob.send("/join mine", "/room register")
    assert bob.take()[-1] == ("!! You are not an operator of #mine. Type /look to see the "
                              "operators (marked @).")
    alice.send("/join second", "/room register")
    assert alice.take()[-1] == (
        "!! You have already registered 1 rooms, the most one user may (#games): "
        "/room drop one of them first.")
    alice.send("/room frobnicate", "/room transfer", "/room drop now")
    usage = ("!! Usage: /room register | info [ROOM] | transfer NAME | drop. "
             "Type /help room for more.")
    assert alice.take() == [usage] * 3
    assert "second" in s.chat.rooms and s.chat.rooms["second"].registration is None


def test_no_registration_without_a_database():
    """Without a store no room can be registered, and /room says so."""
    factory = make_factory(clock=task.Clock())
    alice = FakeClient(factory)
    alice.send("alice", "/join games")
    alice.take()
    alice.send("/room register")
    assert alice.take() == ["!! Rooms cannot be registered here: this server keeps nothing "
                            "on disk."]


# -- what registration changes ------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_registered_room_stays_when_empty_and_secret_hides_it(site):
    """An empty registered room stays and shows with 0 users; +s hides it; an unregistered one goes."""
    s = site()
    alice, bob, carol = yield founded(s)
    carol.send("/join other", "/leave other")
    assert "other" not in s.chat.rooms
    for client in (alice, bob, carol):
        client.send("/leave games")
    assert "games" in s.chat.rooms and len(s.chat.rooms["games"]) == 0
    carol.take()
    carol.send("/rooms")
    assert "--   #games (0 users)" in carol.take()
    alice.send("/join games", "/mode +s", "/leave games")
    carol.send("/rooms")
    assert not any("#games" in line for line in carol.take())
    assert "games" in s.chat.rooms


@pytest_twisted.inlineCallbacks
def test_founder_and_kept_operators_get_their_status_back(site):
    """The founder and registered users made operators are operators again on entering; a guest is not."""
    s = site()
    alice, bob, carol = yield founded(s)
    alice.send("/op bob", "/op carol")
    assert s.chat.rooms["games"].registration.operators == {"bob"}
    for client in (alice, bob, carol):
        client.send("/leave games")
    for client in (alice, bob, carol):
        client.send("/join games")
    state = s.chat.rooms["games"].moderation
    assert state.operators == {"alice", "bob"}
    assert "-- The server operator made bob an operator in #games" in alice.take()
    alice.send("/deop bob")
    assert s.chat.rooms["games"].registration.operators == set()
    bob.send("/leave games", "/join games")
    assert "bob" not in state.operators


@pytest_twisted.inlineCallbacks
def test_founder_gets_past_everything_and_kept_operators_past_all_but_bans(site):
    """Nobody can lock the founder out; a kept operator gets past +i, +k and +l but not a ban."""
    s = site()
    alice, bob, carol = yield founded(s)
    alice.send("/op bob", "/leave games")
    bob.send("/mode +ikl sesame 1", "/ban alice", "/leave games")
    carol.send("/leave games")
    alice.send("/join games")
    assert "-> You joined #games" in alice.take()
    assert "alice" in s.chat.rooms["games"].moderation.operators
    bob.send("/join games")
    assert "-> You joined #games" in bob.take()  # past +i, +k and the limit of 1
    alice.send("/unban alice", "/ban bob", "/kick bob")
    bob.send("/join games")
    assert bob.take()[-1].startswith("!! You are banned from #games")
    carol.send("/join games sesame")
    assert carol.take()[-1].startswith("!! #games is invite-only")


@pytest_twisted.inlineCallbacks
def test_transfer(site, logged):
    """The founder gives the room to a registered user, and stays a kept operator; refusals say why."""
    s = site()
    alice, bob, carol = yield founded(s)
    alice.send("/room transfer carol")
    assert alice.take() == ["!! carol is not a registered name: a room can only be "
                            "transferred to a registered user (they type /register "
                            "PASSWORD first)."]
    alice.send("/room transfer alice")
    assert alice.take() == ["!! alice is already the founder of #games."]
    bob.send("/room transfer bob")
    assert bob.take() == ["!! Only the founder of #games, alice, can transfer its "
                          "registration: ask them, or the server's operator."]
    alice.send("/room transfer BOB")
    assert alice.take() == ["-- #games now belongs to bob; you stay one of its operators."]
    registration = s.chat.rooms["games"].registration
    assert (registration.founder_key, registration.founder) == ("bob", "bob")
    assert registration.operators == {"alice"}
    alice.send("/room drop")
    assert alice.take() == ["!! Only the founder of #games, bob, can drop its registration: "
                            "ask them, or the server's operator."]
    assert "rooms: alice transferred #games from alice to bob" in logged()


@pytest_twisted.inlineCallbacks
def test_drop(site, logged):
    """Dropping makes the room ordinary again: it goes when empty; drop of an unregistered room is refused."""
    s = site()
    alice, bob, carol = yield founded(s)
    carol.send("/room drop")
    assert carol.take() == ["!! Only the founder of #games, alice, can drop its "
                            "registration: ask them, or the server's operator."]
    alice.send("/room drop")
    assert alice.take() == ["-- #games is no longer registered: it closes when its last "
                            "member leaves, as ordinary rooms do."]
    alice.send("/room drop")
    assert alice.take() == ["!! #games is not registered, so there is nothing to drop: its "
                            "operators can type /room register to register it."]
    assert "alice" in s.chat.rooms["games"].moderation.operators
    for client in (alice, bob, carol):
        client.send("/leave games")
    assert "games" not in s.chat.rooms
    assert "rooms: alice dropped the registration of #games (founder alice)" in logged()


def test_help_explains_room():
    """/help lists /room and /help room explains it."""
    assert "room" in ChatCommands.command_names()
    factory = make_factory(clock=task.Clock())
    alice = FakeClient(factory)
    alice.send("alice")
    alice.take()
    alice.send("/help")
    assert any(line.startswith("--   /room register | info [ROOM]") for line in alice.take())
    alice.send("/help room")
    lines = alice.take()
    assert lines[0] == "-- /room register | info [ROOM] | transfer NAME | drop"
    assert "/room transfer NAME" in lines[1] and "founder" in lines[1]


# -- what is kept: real SQLite, and reading it back ------------------------------------------


@pytest_twisted.inlineCallbacks
def test_kept_in_the_database_and_read_back(site, tmp_path):
    """Founder, kept operators, bans (in order), modes, key, limit and topic are written as they change and restored."""
    s = site()
    alice, bob, carol = yield founded(s)
    alice.send("/op bob", "/ban spam*", "/ban Eve", "/mode +mt", "/mode +k sesame",
               "/mode +l 30", "/topic Board games only")
    yield wait(s.store.flush())
    path = s.store.path
    assert query(path, "SELECT key, name, founder_key, founder, flags, password, member_limit"
                       " FROM rooms") == [("games", "games", "alice", "alice", "mt", "sesame", 30)]
    assert query(path, "SELECT account_key FROM room_operators") == [("bob",)]
    assert query(path, "SELECT ban_key, mask FROM room_bans ORDER BY position") == [
        ("spam*", "spam*"), ("eve", "Eve")]
    yield s.close()

    again = site()
    room = again.chat.rooms["games"]
    assert len(room) == 0 and room.persistent
    assert (room.registration.founder_key, room.registration.operators) == ("alice", {"bob"})
    state = room.moderation
    assert (state.flags, state.key, state.limit) == ({"m", "t"}, "sesame", 30)
    assert list(state.bans.values()) == ["spam*", "Eve"]
    assert room.topic == "Board games only"
    assert state.is_banned("eve")

    bob = FakeClient(again.factory)
    again.clients.append(bob)
    bob.send("bob", PASSWORD)
    yield wait_until(lambda: bob.user is not None)
    bob.send("/join games")
    assert "bob" in state.operators
    alice = FakeClient(again.factory)
    again.clients.append(alice)
    alice.send("alice", PASSWORD)
    yield wait_until(lambda: alice.user is not None)
    alice.send("/join games")
    assert "alice" in state.operators
    alice.send("/room drop")
    yield wait(again.store.flush())
    assert query(path, "SELECT count(*) FROM rooms") == [(0,)]
    assert query(path, "SELECT count(*) FROM room_bans") == [(0,)]


def test_load_skips_the_default_room_and_keeps_only_known_modes():
    """A record for the default room is ignored; unknown flag letters are dropped."""
    clock = task.Clock()
    records = [RoomRecord("lobby", "lobby", "alice", "alice", 1.0),
               RoomRecord("games", "Games", "alice", "alice", 1.0, "mxz", "", 0, (), ())]
    chat = Chat(clock=clock, stored_rooms=records)
    assert chat.default_room.registration is None
    assert chat.rooms["games"].name == "Games"
    assert chat.rooms["games"].moderation.flags == {"m"}


@pytest_twisted.inlineCallbacks
def test_a_full_database_loses_room_changes_without_stopping_the_chat(site):
    """When the database cannot grow, room changes are lost and counted; the chat goes on, and the next change that fits brings the room up to date."""
    from test_store import limit_pages

    s = site()
    alice, bob, carol = yield founded(s)
    yield wait(s.store.flush())
    dropped = s.store.writes_dropped
    yield wait(s.store._submit(limit_pages, (0,), "limit the size"))
    alice.send(*[f"/ban {'x' * 60}{i:03}" for i in range(100)])
    alice.send("hello")
    assert "<alice> hello" in bob.take()
    yield wait(s.store.flush())
    assert s.store.writes_dropped > dropped
    yield wait(s.store._submit(limit_pages, (100000,), "lift the limit"))
    alice.send("/mode +m")
    yield wait(s.store.flush())
    assert query(s.store.path, "SELECT count(*) FROM room_bans") == [(100,)]
    assert query(s.store.path, "SELECT flags FROM rooms") == [("m",)]


# -- the admin shell ------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_admin_sees_and_drops_any_registration(site, capsys, logged):
    """room() shows the registration and modes; transfer_room() and drop_room() outrank the founder."""
    s = site()
    alice, bob, carol = yield founded(s)
    namespace = make_namespace(s.chat, None)
    namespace["room"]("games")
    out = capsys.readouterr().out
    assert "  registered to alice (account alice) since 20" in out
    assert "operators kept: none" in out and "  modes +n" in out
    namespace["room"]("lobby")
    assert "registered" not in capsys.readouterr().out
    namespace["transfer_room"]("games", "carol")
    assert capsys.readouterr().out.startswith("carol is not a registered name")
    namespace["transfer_room"]("games", "bob")
    assert capsys.readouterr().out == "#games now belongs to bob.\n"
    for client in (alice, bob, carol):
        client.send("/leave games")
    namespace["drop_room"]("games")
    assert capsys.readouterr().out == "#games is no longer registered.\n"
    assert "games" not in s.chat.rooms
    namespace["drop_room"]("lobby")
    assert "is not registered" in capsys.readouterr().out
    texts = logged()
    assert "rooms: the server operator transferred #games from alice to bob" in texts
    assert "rooms: the server operator dropped the registration of #games (founder bob)" in texts


@pytest_twisted.inlineCallbacks
def test_close_room_keeps_a_registered_room(site):
    """The admin's close_room empties a registered room but keeps it."""
    s = site()
    yield founded(s)
    s.chat.close_room("games", "cleaning")
    assert "games" in s.chat.rooms and len(s.chat.rooms["games"]) == 0


# -- over IRC: the same rules ------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_registered_channels_over_irc(site):
    """Over IRC the founder (PASS) gets @ in NAMES and the others a MODE +o; a kept ban gives 474."""
    from ircclient import IRCFakeClient, irc_factory

    s = site()
    alice, bob, carol = yield founded(s)
    alice.send("/ban eve", "/quit")
    ircf = irc_factory(s.factory)
    ivy = IRCFakeClient(ircf)
    ivy.register("ivy")
    ivy.send("JOIN #games")
    ivy.take()
    founder = IRCFakeClient(ircf)
    founder.register("alice", f"PASS {PASSWORD}")
    yield wait_until(lambda: founder.user is not None)
    founder.take()
    founder.send("JOIN #games")
    names = [line for line in founder.take() if IRCFakeClient.words(line)[0] == "353"]
    assert names and "@alice" in names[0].split(":")[-1].split()
    assert ivy.take()[-1].endswith("MODE #games +o :alice")
    assert "-- The server operator made alice an operator in #games" in bob.take()
    eve = IRCFakeClient(ircf)
    eve.register("eve")
    eve.send("JOIN #games")
    assert "474" in eve.numerics()
    for client in (ivy, founder, eve):
        client.transport.loseConnection()
        client.protocol.connectionLost(None)


@pytest_twisted.inlineCallbacks
def test_transfer_past_the_limit_and_info_of_a_secret_room(site):
    """A transfer to someone who founds the most rooms is refused; /room info does not reveal a secret room."""
    s = site(max_registered_rooms=1)
    alice, bob, carol = yield founded(s)
    bob.send("/join chess", "/room register")
    bob.take()
    alice.send("/room transfer bob")
    assert alice.take() == ["!! bob already founds 1 rooms, the most one user may: they "
                            "must /room drop one first."]
    bob.send("/mode +s", "/leave chess")
    carol.send("/room info #chess")
    assert carol.take() == ["!! There is no room called #chess. Type /rooms to see the rooms."]
    alice.send("/room info #chess")
    assert alice.take() == ["!! There is no room called #chess. Type /rooms to see the rooms."]
