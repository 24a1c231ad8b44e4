"""
CHATHISTORY (draft/chathistory) over the rooms' stored lines: every
subcommand with timestamp= and msgid= references, the FAIL replies, and
the order of answers read from the store (later commands wait for them).
"""

from typing import Dict, List

import pytest
from twisted.internet import defer

from chatservice.frontends.irc.wire import format_time, message_id
from chatservice.persistence.records import HistoryLine
from ircclient import IRCFakeClient, irc_factory

NOON = 1796126400.0
CAPS = "batch server-time message-tags echo-message labeled-response draft/chathistory"


class RecordingRecent:
    """Room lines recorded as said, read back at once or (C{slow}) when the test says."""

    def __init__(self) -> None:
        self.rooms: Dict[str, List[HistoryLine]] = {}
        self.slow = False
        self.waiting: List[defer.Deferred] = []
        self.size = 20

    def record(self, room_key, when, kind, sender, text) -> None:
        lines = self.rooms.setdefault(room_key, [])
        lines.append(HistoryLine(len(lines) + 1, when, kind, sender, text))

    def in_memory(self, count: int) -> bool:
        return count <= self.size

    def lines(self, key, count):
        result = self.rooms.get(key, [])[-count:]
        if not self.slow:
            return defer.succeed(result)
        d: defer.Deferred = defer.Deferred()
        self.waiting.append(d)
        return d.addCallback(lambda _: result)

    def forget(self, key) -> None:
        pass


@pytest.fixture
def setup(factory, clock):
    """An IRC client with every history capability in #c, where it said ten lines a second apart."""
    clock.advance(NOON)
    recent = factory.chat.recent = RecordingRecent()
    alice = IRCFakeClient(irc_factory(factory))
    alice.send("CAP LS 302", f"CAP REQ :{CAPS}")
    alice.register("alice")
    alice.send("CAP END", "JOIN #c")
    for i in range(10):
        clock.advance(1)
        alice.send(f"PRIVMSG #c :message {i}")
    alice.send("TOPIC #c :a topic")
    alice.take()
    return alice, recent


def texts(lines: List[str]) -> List[str]:
    """The texts of the PRIVMSGs among C{lines}."""
    return [line.split(" PRIVMSG ", 1)[1].split(" :", 1)[1] for line in lines if " PRIVMSG " in line]


def at(i: int) -> float:
    return NOON + 1 + i


@pytest.mark.parametrize("command, expected", [
    ("LATEST #c * 3", [7, 8, 9]),
    ("LATEST #c * 50", list(range(10))),
    (f"LATEST #c timestamp={format_time(at(4))} 50", [5, 6, 7, 8, 9]),
    (f"LATEST #c msgid={message_id(at(4), 'alice')} 50", [5, 6, 7, 8, 9]),
    (f"BEFORE #c timestamp={format_time(at(6))} 2", [4, 5]),
    (f"BEFORE #c msgid={message_id(at(6), 'alice')} 50", [0, 1, 2, 3, 4, 5]),
    (f"AFTER #c timestamp={format_time(at(3))} 3", [4, 5, 6]),
    (f"AROUND #c msgid={message_id(at(7), 'alice')} 1", [7]),
    (f"AROUND #c msgid={message_id(at(7), 'alice')} 3", [6, 7, 8]),
    (f"BETWEEN #c timestamp={format_time(at(0))} timestamp={format_time(at(9))} 3", [1, 2, 3]),
    (f"BETWEEN #c msgid={message_id(at(9), 'alice')} msgid={message_id(at(0), 'alice')} 3",
     [6, 7, 8]),
])
def test_subcommands(setup, command, expected):
    """Each subcommand picks the lines the spec says, oldest first, without topic changes."""
    alice, _ = setup
    alice.send("CHATHISTORY " + command)
    lines = alice.take()
    assert lines[0].startswith(":testchat BATCH +") and lines[0].endswith(" chathistory :#c")
    ref = lines[0].split(" ")[2][1:]
    assert lines[-1] == f":testchat BATCH :-{ref}"
    assert texts(lines) == [f"message {i}" for i in expected]
    assert all(line.startswith(f"@batch={ref};time=") for line in lines[1:-1])


def test_history_lines_carry_the_live_msgid_and_time(setup):
    """A line replayed by CHATHISTORY has the msgid and time it had when it was said."""
    alice, _ = setup
    alice.send("CHATHISTORY LATEST #c * 1")
    [_, line, _] = alice.take()
    assert line.startswith(f"@batch=h1;time={format_time(at(9))};msgid="
                           f"{message_id(at(9), 'alice')} :alice!~alice@testchat PRIVMSG")


def test_errors_are_fail_replies(setup):
    """Unknown subcommands, missing parameters, bad references and limits, and channels one is not in are FAIL CHATHISTORY replies."""
    alice, _ = setup
    alice.send("CHATHISTORY FOO #c * 1", "CHATHISTORY LATEST #c", "CHATHISTORY BEFORE #c * 5",
               "CHATHISTORY LATEST #c * 0", "CHATHISTORY LATEST #nowhere * 5",
               "CHATHISTORY LATEST nobody * 5")
    lines = alice.take()
    assert [line.split(" ")[3:5] for line in lines] == [
        ["INVALID_PARAMS", "FOO"], ["NEED_MORE_PARAMS", "LATEST"], ["INVALID_PARAMS", "BEFORE"],
        ["INVALID_PARAMS", "LATEST"], ["INVALID_TARGET", "LATEST"], ["INVALID_TARGET", "LATEST"]]
    assert lines[4].startswith(":testchat FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :")


def test_private_conversations_have_an_empty_history(setup, factory):
    """A guest asking for a nick that exists gets an empty batch: nothing is kept for guests (tests/test_private_history.py has the stored conversations)."""
    alice, _ = setup
    IRCFakeClient(irc_factory(factory)).register("bob")
    alice.send("CHATHISTORY LATEST bob * 5")
    assert [line.split(" ")[1] for line in alice.take()] == ["BATCH", "BATCH"]


def test_answers_from_the_store_come_before_later_replies(setup):
    """While a read waits for the store, later lines wait too: the answer, labeled, comes before the PONG."""
    alice, recent = setup
    recent.slow = True
    alice.send("@label=x CHATHISTORY LATEST #c * 2", "PING after")
    assert alice.take() == []
    recent.waiting.pop().callback(None)
    lines = alice.take()
    assert lines[0] == "@label=x :testchat BATCH +L2 :labeled-response"
    assert lines[1].startswith("@batch=L2 :testchat BATCH +h1 chathistory")
    assert texts(lines) == ["message 8", "message 9"]
    assert lines[-2] == ":testchat BATCH :-L2"
    assert lines[-1] == ":testchat PONG testchat :after"


def test_targets(setup, factory, clock):
    """TARGETS lists your channels with messages between the two times, with the latest one's time."""
    alice, _ = setup
    alice.send(f"CHATHISTORY TARGETS timestamp={format_time(NOON)} "
               f"timestamp={format_time(NOON + 100)} 10")
    lines = alice.take()
    assert lines[1] == (f"@batch=t1 :testchat CHATHISTORY TARGETS #c :{format_time(at(9))}")
    assert len(lines) == 3


def test_join_replay_read_from_the_store_comes_before_later_lines(factory, clock):
    """When the replay on JOIN waits for the store, the client's next lines wait too, and the replay holds only what was said before the JOIN."""
    clock.advance(NOON)
    recent = factory.chat.recent = RecordingRecent()
    recent.record("c", NOON - 5, "say", "bob", "before")
    recent.slow = True
    alice = IRCFakeClient(irc_factory(factory))
    alice.send("CAP LS 302", f"CAP REQ :{CAPS}")
    alice.register("alice")
    alice.send("CAP END")
    alice.take()
    alice.send("JOIN #c", "PRIVMSG #c :after", "PING x")
    assert alice.take()[-1].endswith(" 366 alice #c :End of /NAMES list")
    recent.record("c", NOON + 1, "say", "bob", "meanwhile")
    recent.waiting.pop().callback(None)
    lines = alice.take()
    assert texts(lines) == ["before", "after"]
    assert lines[0] == ":testchat BATCH +h1 chathistory :#c"
    assert lines[-1] == ":testchat PONG testchat :x"
