"""
The IRCv3 capabilities beyond the basics: labeled-response (a lone reply
labeled, several in a batch, none an ACK), away-notify, account-tag,
extended-join and message ids.
"""

import pytest

from chatservice.frontends.irc.wire import message_id
from ircclient import IRCFakeClient, irc_factory
from test_irc_registration import FakeAccounts

NOON = 1796126400.0


@pytest.fixture
def ircf(factory):
    return irc_factory(factory)


@pytest.fixture
def irc(ircf):
    """Return C{connect(nick, caps)}: an IRC client registered with CAP REQ :caps."""

    def connect(nick: str, caps: str = "", *before: str) -> IRCFakeClient:
        client = IRCFakeClient(ircf)
        if caps:
            client.send("CAP LS 302", f"CAP REQ :{caps}")
        client.register(nick, *before)
        if caps:
            client.send("CAP END")
        client.take()
        return client

    return connect


def test_labeled_response_one_line_is_labeled(irc):
    """A command answered by one line gets the label on that line; the label is escaped."""
    alice = irc("alice", "labeled-response batch")
    alice.send("@label=abc PING token")
    assert alice.take() == ["@label=abc :testchat PONG testchat :token"]
    alice.send("@label=a\\sb PING token")
    assert alice.take() == ["@label=a\\sb :testchat PONG testchat :token"]


def test_labeled_response_many_lines_are_a_batch_and_none_is_ack(irc):
    """Several answering lines come in a labeled-response batch, each tagged with it; no answer is ACK."""
    alice = irc("alice", "labeled-response batch")
    alice.send("@label=12345 JOIN #xyz")
    lines = alice.take()
    assert lines[0] == "@label=12345 :testchat BATCH +L1 :labeled-response"
    assert lines[-1] == ":testchat BATCH :-L1"
    assert all(line.startswith("@batch=L1 ") for line in lines[1:-1])
    assert [line.split(" ")[2] for line in lines[1:-1]] == ["JOIN", "353", "366"]
    alice.send("@label=x PONG foo")
    assert alice.take() == ["@label=x :testchat ACK"]


def test_labeled_echo_and_not_to_recipients(irc):
    """With echo-message the sender's echo carries the label; the recipient's copy does not."""
    alice = irc("alice", "labeled-response batch echo-message")
    bob = irc("bob", "labeled-response batch echo-message")
    alice.send("@label=7 PRIVMSG bob :hi")
    assert alice.take() == ["@label=7 :alice!~alice@testchat PRIVMSG bob :hi"]
    assert bob.take() == [":alice!~alice@testchat PRIVMSG bob :hi"]


def test_labels_ignored_without_the_cap(irc):
    """Without labeled-response a label changes nothing."""
    alice = irc("alice")
    alice.send("@label=1 PING x")
    assert alice.take() == [":testchat PONG testchat :x"]


def test_away_notify(irc):
    """away-notify members of a shared channel see AWAY :msg and AWAY; others do not; joining while away tells them too."""
    alice = irc("alice", "away-notify")
    plain = irc("carol")
    bob = irc("bob")
    for client in (alice, plain, bob):
        client.send("JOIN #c")
    alice.take(), plain.take()
    bob.send("AWAY :lunch", "AWAY")
    assert alice.take() == [":bob!~bob@testchat AWAY :lunch", ":bob!~bob@testchat AWAY"]
    assert plain.take() == []
    bob.send("AWAY :gone", "JOIN #d")
    alice.send("JOIN #d")
    alice.take()
    dave = irc("dave", "away-notify")
    dave.send("JOIN #d")
    dave.take()
    bob.send("PART #d", "JOIN #d")
    assert dave.take()[-1] == ":bob!~bob@testchat AWAY :gone"


def test_extended_join_and_account_tag(factory, clock):
    """extended-join JOINs carry the account (* when not logged in) and real name; account-tag tags lines of logged-in users."""
    factory.chat.accounts = FakeAccounts({"Alice": "secret1"})
    ircf = irc_factory(factory)
    watcher = IRCFakeClient(ircf)
    watcher.send("CAP LS 302", "CAP REQ :extended-join account-tag")
    watcher.register("watcher")
    watcher.send("CAP END", "JOIN #c")
    alice = IRCFakeClient(ircf)
    alice.register("alice", "PASS secret1")
    guest = IRCFakeClient(ircf)
    guest.send("NICK guest", "USER guest 0 * :Guest Person")
    watcher.take()
    alice.send("JOIN #c", "PRIVMSG #c :hello")
    guest.send("JOIN #c", "PRIVMSG #c :hi")
    assert watcher.take() == [
        "@account=Alice :Alice!~alice@testchat JOIN #c Alice :Real alice",
        "@account=Alice :Alice!~alice@testchat PRIVMSG #c :hello",
        ":guest!~guest@testchat JOIN #c * :Guest Person",
        ":guest!~guest@testchat PRIVMSG #c :hi"]


def test_msgid_is_the_same_for_echo_recipients_and_history(irc, clock):
    """Under message-tags a message's msgid is the same in the echo, at every recipient, and unique per message."""
    clock.advance(NOON)
    alice = irc("alice", "message-tags echo-message")
    bob = irc("bob", "message-tags")
    alice.send("JOIN #c")
    bob.send("JOIN #c")
    alice.take(), bob.take()
    alice.send("PRIVMSG #c :one")
    clock.advance(0.001)
    alice.send("PRIVMSG #c :two")
    echoes, copies = alice.take(), bob.take()
    ids = [line.split(" ")[0] for line in echoes]
    assert ids == [line.split(" ")[0] for line in copies]
    assert ids[0] == "@msgid=" + message_id(NOON, "alice") and ids[0] != ids[1]


def test_client_only_tags_reach_message_tags_clients_only(irc, connect):
    """+tags on a PRIVMSG reach message-tags clients (escaped as they came), never others; server tags from clients are dropped."""
    alice = irc("alice", "message-tags echo-message")
    bob = irc("bob", "message-tags")
    carol = irc("carol")
    dave = connect("dave")
    for client in (alice, bob, carol):
        client.send("JOIN #lobby")
    for client in (alice, bob, carol, dave):
        client.take()
    alice.send("@+baz=b\\:t;fizz=buzz PRIVMSG #lobby :hi")
    [copy] = bob.take()
    assert copy.startswith("@+baz=b\\:t;msgid=") and "fizz" not in copy
    assert alice.take() == [copy]
    assert carol.take() == [":alice!~alice@testchat PRIVMSG #lobby :hi"]
    assert dave.take() == ["<alice> hi"]


def test_tagmsg(irc, connect):
    """TAGMSG reaches message-tags clients in the channel (and the sender with echo-message), nobody else; to a nick, that nick; errors as PRIVMSG's."""
    alice = irc("alice", "message-tags echo-message")
    bob = irc("bob", "message-tags")
    carol = irc("carol")
    dave = connect("dave")
    for client in (alice, bob, carol):
        client.send("JOIN #lobby")
    for client in (alice, bob, carol, dave):
        client.take()
    alice.send("@+typing=active TAGMSG #lobby")
    [line] = bob.take()
    assert line.startswith("@+typing=active;msgid=")
    assert line.endswith(" :alice!~alice@testchat TAGMSG :#lobby")
    assert alice.take() == [line]
    assert carol.take() == [] and dave.take() == []
    alice.send("@+typing=done TAGMSG bob", "TAGMSG nobody", "TAGMSG #nowhere", "TAGMSG")
    [line] = bob.take()
    assert line.startswith("@+typing=done;") and line.endswith(" TAGMSG :bob")
    assert alice.numerics() == ["401", "401", "411"]


def test_labeled_tagmsg_to_oneself_labels_only_the_echo(irc):
    """A labeled TAGMSG to oneself with echo-message comes twice: the delivery, unlabeled, and the labeled echo."""
    alice = irc("alice", "message-tags echo-message labeled-response batch")
    alice.send("@label=9;+react=x TAGMSG alice")
    lines = alice.take()
    assert len(lines) == 2
    assert [line.startswith("@label=9;") for line in lines] == [False, True]
