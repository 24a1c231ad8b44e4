"""
Property-based hostile input: arbitrary bytes, split at arbitrary points,
from a logged-in user next to others must leave the server consistent and
the others unaffected.
"""

import re

from chatservice.frontends.line.factory import ChatFactory
from conftest import FakeClient, make_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import task

from chatservice.core.limits import Limits

FRAGMENTS = [
    b"\n", b"\r", b"\r\n", b"\r\x00", b"\x00", b"\xff", b"\xff\xff", b"\xff\xfd\x01",
    b"\xff\xfb\x03", b"\xff\xfa\x18\x01", b"\xff\xf0", b"\xff\xf4\xff\xfd\x06",
    b"\x1b[2J", b"\x1b]0;pwned\x07", b"\xe2\x80\xae", b"\xef\xbb\xbf", b"\xc3",
    b"\xed\xa0\x80", b"/join ", b"/leave", b"/nick ", b"/msg bob ", b"/me ",
    b"/topic ", b"/quit", b"/who", b"/say /", b"#", b"bob", b"carol", b"x" * 300,
    "ｂｏｂ".encode(), b"/help ", b"/rooms", b"/look", b"/ping ",
]

stream = st.lists(
    st.one_of(st.binary(max_size=40), st.sampled_from(FRAGMENTS)), max_size=40
).map(b"".join)

# What another user may legitimately see: every line starts like one of these.
ALLOWED = re.compile(
    r"^(<\w[\w-]*> |\* \w[\w-]* |\[#[\w-]+\] |\[private\] |-> |<- |-- |!! |PONG)"
)


def check_consistent(factory: ChatFactory) -> None:
    """Every user and room agrees with every other about membership."""
    for key, user in factory.chat.users.items():
        assert user.key == key
        assert user.client in factory.chat.clients
        for room_key, room in user.rooms.items():
            assert factory.chat.rooms[room_key] is room
            assert room.members[key] is user
        assert user.current is None or user.current.key in user.rooms
    for key, room in factory.chat.rooms.items():
        assert room.members or room.persistent
        for member_key, member in room.members.items():
            assert factory.chat.users[member_key] is member
            assert member.rooms[key] is room


def check_clean_output(client: FakeClient) -> None:
    """What a bystander saw since login is clean lines that name their sender."""
    for line in client.take():
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line), line
        assert ALLOWED.match(line), line
        assert "something went wrong" not in line


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=stream, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10))
def test_arbitrary_bytes_leave_others_unaffected(data, cuts):
    """Whatever mallory sends, bob and carol keep chatting and state stays consistent."""
    clock = task.Clock()
    factory = make_factory(clock=clock, limits=Limits(max_line_length=256))
    bob, carol, mallory = (FakeClient(factory) for _ in range(3))
    for client, name in ((bob, "bob"), (carol, "carol"), (mallory, "mallory")):
        client.send(name)
        client.take()
    bob.take()
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:]):
        mallory.feed(data[start:end])
        clock.advance(0.1)
        check_consistent(factory)
    mallory.feed(b"\n")
    check_consistent(factory)
    check_clean_output(bob)
    check_clean_output(carol)
    assert not bob.closed and not carol.closed
    assert "something went wrong" not in mallory.output().decode("utf-8", "replace")
    # bob and carol still talk to each other, wherever mallory went.
    bob.take()
    carol.take()
    bob.send("/join lobby", "still here")
    carol.send("/join lobby")
    carol.take()
    bob.send("and now?")
    assert carol.take() == ["<bob> and now?"]
    mallory.lose()
    check_consistent(factory)
    assert set(factory.chat.users) == {"bob", "carol"}
