"""
The history of private conversations: kept in the store for registered
accounts only (one row per account that took part, deleted with the
account, capped per account), read back by IRC's CHATHISTORY with a nick
target and TARGETS, and by the line front end's C{/history NAME}.

Store tests open a real SQLite file on the real reactor; the protocol
tests drive IRC and telnet clients over L{StringTransport} against a chat
over a real store (its writer and reader threads), waiting with timeouts.
"""

import re
import sqlite3
import textwrap
from typing import List

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chatservice.core.limits import Limits
from chatservice.frontends.irc.wire import format_time
from chatservice.persistence.records import PrivateLine, PrivateTarget
from chatservice.persistence.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from chatservice.persistence.store import PRIVATE_HISTORY_LIMIT, ChatStore
from chatservice.frontends.web.factory import WebChatFactory
from conftest import FakeClient, make_factory
from dbfile import query
from ircclient import IRCFakeClient, irc_factory
from webclient import FakeWebClient
from netclient import wait, wait_until

PASSWORD = "Otter-Garnet-731"
CAPS = "batch server-time message-tags echo-message draft/chathistory"


@pytest.fixture
def stores():
    """Open L{ChatStore}s on the real reactor; every one still open is closed at the end."""
    from twisted.internet import reactor

    opened = []

    def open_store(path, **kwargs):
        kwargs.setdefault("batch_interval", 0.01)
        store = ChatStore(str(path), reactor, **kwargs)
        opened.append(store)
        return store, store.open()

    yield open_store
    for store in opened:
        pytest_twisted.blockon(wait(store.close()))


def row(owner, peer, when, sender, recipient, text, outgoing, kind="say"):
    """The arguments of L{ChatStore.record_private} for one line."""
    return (owner, peer, when, kind, sender, recipient, text, outgoing)


# -- the store ---------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_a_conversation_is_read_back_for_its_owner_only(stores, tmp_path):
    """
    Lines are read per account and per peer, oldest first, with their
    direction; another account's rows and another peer's stay out; the
    targets are each peer's last line, earliest first.
    """
    store, _ = stores(tmp_path / "chat.db")
    store.record_private(*row("alice", "bob", 10.0, "Alice", "Bob", "hi bob", True))
    store.record_private(*row("bob", "alice", 10.0, "Alice", "Bob", "hi bob", False))
    store.record_private(*row("alice", "carol", 11.0, "carol", "Alice", "psst", False))
    store.record_private(*row("alice", "bob", 12.0, "Bob", "Alice", "waves", False, "act"))
    lines = yield wait(store.private_history("alice", "bob", 10))
    assert [line[1:] for line in lines] == [
        (10.0, "say", "Alice", "Bob", "hi bob", True),
        (12.0, "act", "Bob", "Alice", "waves", False)]
    assert [line.peer for line in lines] == ["Bob", "Bob"]
    assert [line.text for line in (yield wait(store.private_history("alice", "bob", 1)))] == [
        "waves"]
    assert [line.text for line in (yield wait(store.private_history("bob", "alice", 10)))] == [
        "hi bob"]
    assert (yield wait(store.private_history("carol", "alice", 10))) == []
    targets = yield wait(store.private_targets("alice", 0.0, 100.0, 10))
    assert targets == [PrivateTarget("carol", 11.0), PrivateTarget("Bob", 12.0)]
    assert (yield wait(store.private_targets("alice", 11.5, 100.0, 10))) == [
        PrivateTarget("Bob", 12.0)]
    assert (yield wait(store.private_targets("alice", 0.0, 100.0, 1))) == [
        PrivateTarget("carol", 11.0)]


@pytest_twisted.inlineCallbacks
def test_each_account_keeps_its_last_lines(stores, tmp_path):
    """
    The per-account cap (all conversations together) is enforced by the
    writer's prune, in several steps if need be; other accounts keep theirs;
    a reopen with a lower cap prunes at start-up.
    """
    assert PRIVATE_HISTORY_LIMIT == 10000
    store, _ = stores(tmp_path / "chat.db", private_history_limit=5, prune_chunk=2,
                      prune_step_seconds=0)
    for i in range(12):
        peer = "bob" if i % 2 else "carol"
        store.record_private(*row("alice", peer, float(i), "Alice", peer, f"line {i}", True))
    for i in range(3):
        store.record_private(*row("dave", "alice", float(i), "Alice", "dave", f"d {i}", False))
    assert (yield wait(store.prune())) == 7
    kept = query(store.path, "SELECT text FROM private_history WHERE owner_key = 'alice'"
                             " ORDER BY id")
    assert [text for (text,) in kept] == [f"line {i}" for i in range(7, 12)]
    assert [line.text for line in (yield wait(store.private_history("alice", "bob", 10)))] == [
        "line 7", "line 9", "line 11"]
    assert len((yield wait(store.private_history("dave", "alice", 10)))) == 3
    assert (yield wait(store.prune())) == 0

    yield wait(store.close())
    store, _ = stores(store.path, private_history_limit=2)
    for _ in range(50):  # the start-up prune runs in the background
        if query(store.path, "SELECT count(*) FROM private_history") == [(4,)]:
            break
        yield wait(store.flush())
    assert [line.text for line in (yield wait(store.private_history("dave", "alice", 10)))] == [
        "d 1", "d 2"]


@pytest_twisted.inlineCallbacks
def test_deleting_an_account_deletes_its_private_history(stores, tmp_path):
    """delete_account removes the account's conversations (and only its own rows)."""
    store, _ = stores(tmp_path / "chat.db")
    yield wait(store.create_account("alice", "Alice", "$scrypt$x", 1.0))
    store.record_private(*row("alice", "bob", 10.0, "Alice", "Bob", "secret", True))
    store.record_private(*row("bob", "alice", 10.0, "Alice", "Bob", "secret", False))
    assert (yield wait(store.delete_account("alice"))) is True
    assert query(store.path, "SELECT owner_key FROM private_history") == [("bob",)]
    assert (yield wait(store.private_history("alice", "bob", 10))) == []


def make_v3_database(path):
    """A schema version 3 database, made by the steps that made version 3, with data."""
    conn = sqlite3.connect(str(path))
    for description, statements in MIGRATIONS[:3]:
        for statement in statements:
            conn.execute(statement)
    conn.executescript(textwrap.dedent(f"""
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = 3;
        INSERT INTO meta VALUES ('created', 40.0);
        INSERT INTO accounts VALUES ('bob', 'Bob', '$scrypt$x', 50.0, 55.0);
        INSERT INTO history (room_key, at, kind, sender, text)
            VALUES ('lobby', 52.0, 'say', 'Bob', 'from version 3');
        INSERT INTO offline (recipient_key, at, sender, text, action)
            VALUES ('bob', 53.0, 'Carol', 'hello', 0);
        INSERT INTO rooms (key, name, founder_key, founder, registered_at)
            VALUES ('games', 'games', 'bob', 'Bob', 54.0);
    """))
    conn.commit()
    conn.close()


@pytest_twisted.inlineCallbacks
def test_a_version_3_database_gets_private_history(stores, tmp_path):
    """A version 3 database is upgraded at start-up, keeping its data; private lines then work."""
    assert SCHEMA_VERSION == 4
    path = tmp_path / "chat.db"
    make_v3_database(path)
    store, loaded = stores(path)
    assert query(path, "PRAGMA user_version") == [(4,)]
    assert loaded.registered == {"bob"}
    assert [room.key for room in loaded.rooms] == ["games"]
    assert [line.text for line in (yield wait(store.history("lobby")))] == ["from version 3"]
    assert [m.text for m in (yield wait(store.take_offline("bob")))] == ["hello"]
    store.record_private(*row("bob", "carol", 60.0, "Carol", "Bob", "new", False))
    assert (yield wait(store.private_history("bob", "carol", 5))) == [
        PrivateLine(1, 60.0, "say", "Carol", "Bob", "new", False)]


# -- through the front ends, over a real store ----------------------------------------


@pytest.fixture
def site(tmp_path):
    """
    A chat over a real store on the real reactor (password checks inline),
    with helpers to connect IRC and telnet clients and register names.
    """
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor, batch_interval=0.01)
    store.open()
    factory = make_factory(clock=reactor, limits=Limits(login_timeout=0), store=store,
                           server_name="testchat",
                           run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
    irc = irc_factory(factory)
    web = WebChatFactory(factory.chat)
    clients: list = []

    class Site:
        chat = factory.chat

        @staticmethod
        def register(name: str) -> defer.Deferred:
            return wait(factory.chat.accounts.register(name.lower(), name, PASSWORD))

        @staticmethod
        @defer.inlineCallbacks
        def irc(nick: str, password: bool = False):
            client = IRCFakeClient(irc)
            clients.append(client)
            client.send("CAP LS 302", f"CAP REQ :{CAPS}")
            if password:
                client.send(f"PASS {PASSWORD}")
            client.register(nick)
            client.send("CAP END")
            yield wait_until(lambda: client.user is not None)
            client.take()
            return client

        @staticmethod
        @defer.inlineCallbacks
        def telnet(name: str, password: bool = False):
            client = FakeClient(factory)
            clients.append(client)
            client.send(name)
            if password:
                client.send(PASSWORD)
            yield wait_until(lambda: client.user is not None)
            client.take()
            return client

        @staticmethod
        @defer.inlineCallbacks
        def web(name: str, password: bool = False):
            client = FakeWebClient(web)
            clients.append(client)
            login = {"type": "login", "name": name}
            if password:
                login["password"] = PASSWORD
            client.send(login)
            yield wait_until(lambda: client.session.user is not None)
            client.take()
            return client

    try:
        yield Site
    finally:
        for client in clients:
            client.transport.loseConnection()
            client.protocol.connectionLost(Failure(ConnectionDone()))
        pytest_twisted.blockon(wait(store.close()))


def answer(client, end: str = "BATCH :-") -> defer.Deferred:
    """Fire with the lines the client gets up to and including one containing C{end}."""
    got: List[str] = []

    def done() -> bool:
        got.extend(client.take())
        return any(end in line for line in got)

    return wait_until(done).addCallback(lambda _: got)


def web_answer(client, kind: str) -> defer.Deferred:
    """Fire with the web client's new messages of type C{kind}, once there is one."""
    got: List[dict] = []

    def done() -> bool:
        got.extend(client.take(kind))
        return bool(got)

    return wait_until(done).addCallback(lambda _: got)


def untagged(line: str) -> str:
    """C{line} without its batch tag."""
    return re.sub(r"^@batch=[^;\s]+;?", "@", line).replace("@ ", "")


def privmsgs(lines: List[str]) -> List[str]:
    return [line for line in lines if " PRIVMSG " in line]


@pytest_twisted.inlineCallbacks
def test_irc_user_reads_a_conversation_with_a_telnet_user_both_ways(site):
    """
    A logged-in IRC user's CHATHISTORY with a nick is the conversation in
    both directions, oldest first, in a chathistory batch for that nick,
    each line as the live PRIVMSG was (mask, target, time, msgid).
    """
    yield site.register("alice")
    alice = yield site.irc("alice", password=True)
    bob = yield site.telnet("bob")
    alice.send("PRIVMSG bob :hello bob")
    [echo] = privmsgs(alice.take())
    bob.send("/msg alice hi alice")
    [incoming] = privmsgs(alice.take())
    alice.send("PRIVMSG bob :\x01ACTION waves\x01")
    live = [echo, incoming] + privmsgs(alice.take())
    assert len(live) == 3
    alice.send("CHATHISTORY LATEST BOB * 10")
    lines = yield answer(alice)
    assert lines[0] == ":testchat BATCH +h1 chathistory :BOB"
    assert lines[-1] == ":testchat BATCH :-h1"
    assert all(line.startswith("@batch=h1;time=") for line in lines[1:-1])
    assert [untagged(line) for line in lines[1:-1]] == live
    assert live[0].endswith(" :alice!~alice@testchat PRIVMSG bob :hello bob")
    assert " :bob!" in live[1] and live[1].endswith(" PRIVMSG alice :hi alice")
    assert live[2].endswith(" :alice!~alice@testchat PRIVMSG bob :\x01ACTION waves\x01")


@pytest_twisted.inlineCallbacks
def test_a_guest_gets_an_empty_batch_and_nothing_is_kept_for_them(site):
    """A guest's conversation with a registered user is kept for that user only."""
    yield site.register("alice")
    alice = yield site.irc("alice", password=True)
    carol = yield site.irc("carol")
    carol.send("PRIVMSG alice :from a guest")
    alice.send("PRIVMSG carol :to a guest")
    carol.send("CHATHISTORY LATEST alice * 10")
    lines = yield answer(carol)
    start = lines.index(":testchat BATCH +h1 chathistory :alice")
    assert lines[start + 1:] == [":testchat BATCH :-h1"]
    yield wait(site.chat.store.flush())
    owners = query(site.chat.store.path, "SELECT DISTINCT owner_key FROM private_history")
    assert owners == [("alice",)]


@pytest_twisted.inlineCallbacks
def test_a_later_holder_of_a_guest_nick_sees_nothing(site):
    """Whoever registers a nick a guest used cannot read the guest's conversations."""
    yield site.register("alice")
    alice = yield site.irc("alice", password=True)
    carol = yield site.irc("carol")
    carol.send("PRIVMSG alice :guest secret")
    alice.send("PRIVMSG carol :reply to the guest")
    carol.send("QUIT")
    yield site.register("carol")
    again = yield site.irc("carol", password=True)
    assert again.user.registered
    again.send("CHATHISTORY LATEST alice * 10")
    assert privmsgs((yield answer(again))) == []
    alice.take()
    alice.send("CHATHISTORY LATEST carol * 10")  # the account that took part keeps it
    assert [line.split(" :", 2)[-1] for line in privmsgs((yield answer(alice)))] == [
        "guest secret", "reply to the guest"]


@pytest_twisted.inlineCallbacks
def test_before_and_after_references_and_the_nick_need_not_be_online(site):
    """BEFORE and AFTER with msgid and timestamp references pick lines of the conversation, also once the nick is gone."""
    yield site.register("alice")
    alice = yield site.irc("alice", password=True)
    bob = yield site.irc("bob")
    for i in range(5):
        alice.send(f"PRIVMSG bob :line {i}")
        yield wait_until(lambda: any(f"line {i}" in line for line in bob.lines()))
        yield wait(_sleep(0.003))
    echoes = privmsgs(alice.take())
    msgids = [re.search(r"msgid=([^; ]+)", line).group(1) for line in echoes]
    times = [re.search(r"time=([^; ]+)", line).group(1) for line in echoes]
    bob.send("QUIT")

    def texts(lines):
        return [line.rsplit(" :", 1)[1] for line in privmsgs(lines)]

    alice.send(f"CHATHISTORY BEFORE bob msgid={msgids[3]} 2")
    assert texts((yield answer(alice))) == ["line 1", "line 2"]
    alice.send(f"CHATHISTORY AFTER bob msgid={msgids[1]} 10")
    assert texts((yield answer(alice))) == ["line 2", "line 3", "line 4"]
    alice.send(f"CHATHISTORY BEFORE bob timestamp={times[2]} 10")
    assert texts((yield answer(alice))) == ["line 0", "line 1"]
    alice.send(f"CHATHISTORY AFTER bob timestamp={times[3]} 10")
    assert texts((yield answer(alice))) == ["line 4"]
    alice.send("CHATHISTORY LATEST nobodyatall * 10")  # never talked to: empty, not an error
    lines = yield answer(alice)
    assert len(lines) == 2 and lines[0].endswith(" chathistory :nobodyatall")


def _sleep(seconds: float) -> defer.Deferred:
    from twisted.internet import reactor, task

    return task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.inlineCallbacks
def test_targets_merge_channels_and_nicks_by_their_last_line(site):
    """TARGETS lists one's channels and conversation partners together, earliest last line first."""
    yield site.register("alice")
    alice = yield site.irc("alice", password=True)
    bob = yield site.irc("bob")
    yield site.irc("dave")
    alice.send("JOIN #early", "JOIN #late")
    alice.send("PRIVMSG #early :first")
    yield wait(_sleep(0.01))
    alice.send("PRIVMSG dave :second")
    yield wait(_sleep(0.01))
    bob.send("PRIVMSG alice :third")
    yield wait(_sleep(0.01))
    alice.send("PRIVMSG #late :fourth")
    alice.take()
    alice.send(f"CHATHISTORY TARGETS timestamp={format_time(0)} "
               f"timestamp={format_time(4102444800)} 10")
    lines = yield answer(alice)
    assert lines[0] == ":testchat BATCH +t1 :draft/chathistory-targets"
    assert [line.split(" ")[4] for line in lines[1:-1]] == ["#early", "dave", "bob", "#late"]
    alice.send(f"CHATHISTORY TARGETS timestamp={format_time(0)} "
               f"timestamp={format_time(4102444800)} 2")
    assert [line.split(" ")[4] for line in (yield answer(alice))[1:-1]] == ["#early", "dave"]


@pytest_twisted.inlineCallbacks
def test_offline_messages_are_part_of_both_conversations(site):
    """A message kept for a registered user who is offline is in the sender's history and, once they log in, theirs."""
    yield site.register("alice")
    yield site.register("dave")
    alice = yield site.irc("alice", password=True)
    alice.send("PRIVMSG dave :while you were out")
    yield wait_until(lambda: any("they will get your message" in line
                                 for line in alice.lines()))
    alice.take()
    dave = yield site.telnet("dave", password=True)
    dave.send("/history alice")
    lines = yield answer(dave, "End of your conversation with alice.")
    assert any(re.match(r"\[private .*\] <alice> while you were out$", line) for line in lines)
    alice.send("CHATHISTORY LATEST dave * 10")
    assert [line.rsplit(" :", 1)[1] for line in privmsgs((yield answer(alice)))] == [
        "while you were out"]


@pytest_twisted.inlineCallbacks
def test_line_history_with_a_name(site):
    """/history NAME shows the conversation to a registered user; a guest is told to /register."""
    yield site.register("bob")
    bob = yield site.telnet("bob", password=True)
    eve = yield site.telnet("eve")
    eve.send("/msg bob hello there", "/msg bob how are you")
    bob.send("/msg eve hi eve")
    bob.send("/history eve 2")
    lines = yield answer(bob, "End of your conversation with eve.")
    assert lines[-4] == "-- History of your conversation with eve, last 2 lines:"
    assert re.match(r"\[private [\d: -]+\] <eve> how are you$", lines[-3])
    assert re.match(r"\[private [\d: -]+\] <bob> hi eve$", lines[-2])
    assert lines[-1] == "-- End of your conversation with eve."
    bob.send("/history nobody")
    assert (yield answer(bob, "no stored conversation"))[-1] == (
        "-- You have no stored conversation with nobody.")
    eve.take()
    eve.send("/history bob")
    [said] = eve.take()
    assert "kept only for registered names" in said and "/register PASSWORD" in said
    eve.send("/history")  # the room's history still works for a guest
    assert "#lobby" in (yield answer(eve, "#lobby"))[-1]


@pytest_twisted.inlineCallbacks
def test_web_history_with_a_name(site):
    """The web's history message with "with" answers the conversation's lines; a guest gets an error naming /register."""
    yield site.register("alice")
    alice = yield site.web("alice", password=True)
    bob = yield site.telnet("bob")
    alice.send({"type": "msg", "to": "bob", "text": "hello from the page"})
    bob.send("/msg alice hello from telnet")
    alice.send({"type": "history", "with": "BOB", "limit": 10, "request": "r1"})
    [got] = yield web_answer(alice, "history")
    assert (got["with"], got["request"], got["asked"]) == ("BOB", "r1", True)
    assert [(line["sender"], line["recipient"], line["kind"], line["text"])
            for line in got["lines"]] == [("alice", "bob", "say", "hello from the page"),
                                          ("bob", "alice", "say", "hello from telnet")]
    assert all(line["id"] > 0 and line["when"] > 0 for line in got["lines"])
    alice.send({"type": "input", "text": "/history bob 1"})  # typed, as on telnet
    [got] = yield web_answer(alice, "history")
    assert [line["text"] for line in got["lines"]] == ["hello from telnet"]
    carol = yield site.web("carol")
    carol.send({"type": "history", "with": "alice"})
    [error] = carol.take("error")
    assert "kept only for registered names" in error["text"] and "/register" in error["text"]
