"""
WHOWAS: who had a nick before, newest first, from the chat's record of
quits and renames (telnet users' too), over a L{StringTransport}.
"""

import pytest

from chatservice.core.whowas import NameHistory
from conftest import FakeClient
from ircclient import IRCFakeClient, irc_factory


@pytest.fixture
def irc(factory):
    ircf = irc_factory(factory)

    def connect(nick: str, username: str = "") -> IRCFakeClient:
        client = IRCFakeClient(ircf)
        client.send(f"NICK {nick}", f"USER {username or nick} 0 * :Real {nick}")
        client.take()
        return client

    return connect


def replies(client, line):
    client.send(line)
    return [client.words(reply) for reply in client.take()]


def test_whowas_after_quits_newest_first_with_count(irc, clock):
    asker = irc("asker")
    for ident in ("first", "second"):
        gone = irc("nick2", username=ident)
        gone.send("QUIT :bye")
        clock.advance(1)
    got = replies(asker, "WHOWAS nick2")
    assert [w[0] for w in got] == ["314", "312", "314", "312", "369"]
    assert got[0][1:6] == ["asker", "nick2", "~second", got[0][4], "*"]
    assert " ".join(got[0][6:]) == ":Real nick2"
    assert got[1][3] == asker.factory.server_name
    assert got[2][3] == "~first"
    assert got[4][1:3] == ["asker", "nick2"]
    assert [w[0] for w in replies(asker, "WHOWAS nick2 1")] == ["314", "312", "369"]
    for count in ("0", "-1", "2", "x"):
        assert [w[0] for w in replies(asker, f"WHOWAS nick2 {count}")].count("314") == 2
    assert [w[0] for w in replies(asker, "WHOWAS NICK2")].count("314") == 2  # casemapping


def test_whowas_wildcards_several_targets_and_renames(irc, factory, clock):
    asker = irc("asker")
    renamer = irc("oldname")
    renamer.send("NICK newname")
    clock.advance(1)
    telnet = FakeClient(factory)
    telnet.send("carol")
    telnet.send("/quit")
    got = replies(asker, "WHOWAS carol,*name")
    users = [w[2] for w in got if w[0] == "314"]
    assert users == ["carol", "oldname"]  # the newest departure first, over all targets
    assert got[-1][:3] == ["369", "asker", "carol,*name"]
    assert [w[0] for w in replies(asker, "WHOWAS newname")] == ["406", "369"]  # still here


def test_whowas_errors(irc):
    asker = irc("asker")
    assert replies(asker, "WHOWAS nobody")[0][:3] == ["406", "asker", "nobody"]
    assert replies(asker, "WHOWAS nobody")[1][:3] == ["369", "asker", "nobody"]
    assert [w[0] for w in replies(asker, "WHOWAS")] == ["431"]


def test_the_record_is_bounded():
    history = NameHistory(size=3)
    for i in range(10):
        history.record(f"n{i}", None, float(i), "quit")
    assert len(history) == 3
    assert [d.name for d in history.find(["n9", "n8", "n7", "n1"])] == ["n9", "n8", "n7"]
