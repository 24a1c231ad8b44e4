"""
Property-based hostile input for the IRC front end: arbitrary bytes and
IRC-looking fragments, split at arbitrary points, from a registered client
next to a telnet user must never raise, never be answered with a server
error, and leave every line the server writes a well-formed IRC line.
"""

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twisted.internet import task

from chatservice.core.limits import Limits
from conftest import FakeClient, make_factory
from ircclient import IRCFakeClient, irc_factory

FRAGMENTS = [
    b"\r\n", b"\n", b"\r", b"\x00", b"\xff", b"\xc3", b"\x01", b"\x01ACTION ", b" :", b":",
    b"@", b"@a=b;c ", b"=", b";", b",", b"#", b"#lobby", b"#games,#x", b"0", b" ",
    b"JOIN ", b"PART ", b"PRIVMSG ", b"NOTICE ", b"TOPIC ", b"NAMES", b"WHO ", b"WHOIS ",
    b"LIST", b"MODE ", b"AWAY ", b"ISON ", b"USERHOST ", b"NICK ", b"USER ", b"PASS ",
    b"CAP ", b"LS 302", b"REQ :", b"END", b"PING ", b"PONG ", b"bob", "ｂｏｂ".encode(),
    b"x" * 600, b"+n", b"-b", b"\x1b[2J", b"\xe2\x80\xae", b"WHOIS :a b\r\n",
    b"PRIVMSG :x y :z\r\n", b"MODE :#a b\r\n", b"PART :#x y\r\n",
]

stream = st.lists(
    st.one_of(st.binary(max_size=30), st.sampled_from(FRAGMENTS)), max_size=40
).map(b"".join)

#: A line the server writes: optional tags, optional source, a command, parameters.
WELL_FORMED = re.compile(r"^(@\S+ )?(:\S+ )?[A-Z0-9]+( [^ :\r\n\x00]\S*)*( :[^\r\n\x00]*)?$")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(chunks=st.lists(stream, min_size=1, max_size=4))
@example(chunks=[b"TOPIC :\x01\t\n"])  # a tab echoed in a middle parameter (found by it)
@example(chunks=[b"\x01\x1c\r\n"])
def test_hostile_bytes_never_break_the_irc_front_end(chunks):
    """Whatever a client sends, the server answers in well-formed lines, never with an error of its own, and the telnet user next to it sees only chat lines."""
    clock = task.Clock()
    factory = make_factory(clock=clock, server_name="testchat",
                           limits=Limits(flood_rate=0, max_long_lines=0))
    bob = FakeClient(factory)
    bob.send("bob")
    ircf = irc_factory(factory)
    mallory = IRCFakeClient(ircf)
    mallory.register("mallory")
    mallory.send("JOIN #lobby")
    for chunk in chunks:
        mallory.feed(chunk)
    for line in mallory.lines():
        assert WELL_FORMED.match(line), line
        assert "something went wrong" not in line
    for line in bob.lines():
        assert "\x1b" not in line and "\x01" not in line
    bob.send("/ping alive")
    assert bob.lines()[-1] == "PONG alive"
    for key, user in factory.chat.users.items():
        for room in user.rooms.values():
            assert room.members[key] is user
