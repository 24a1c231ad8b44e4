"""
The indexes behind /rooms and /who (L{chatservice.core.index}): against a plain
sorted list, with random keys, prefixes and changes of membership.
"""

from hypothesis import given
from hypothesis import strategies as st

from chatservice.core.index import RoomIndex, SortedKeys
from chatservice.core.room import Room
from chatservice.core.user import User

keys = st.text(alphabet="ab\U0010ffff", max_size=4)


class StubRenderer:
    """Just enough of a renderer for a room's delivery plan."""

    distinguishes_focus = False

    @staticmethod
    def encode(event, focused):
        return b""

    @staticmethod
    def combine(payloads):
        return b""


class StubClient:
    """Just enough of a front end for Room.add."""

    renderer = StubRenderer()

    def write(self, data):
        pass


@given(st.lists(st.tuples(st.booleans(), keys)), keys, st.integers(0, 5))
def test_sorted_keys_match_a_sorted_set(changes, prefix, count):
    """add/discard/first/starting_with/count_starting_with agree with sorting a set."""
    index, model = SortedKeys(), set()
    for adding, key in changes:
        if adding:
            index.add(key)
            model.add(key)
        else:
            index.discard(key)
            model.discard(key)
    ordered = sorted(model)
    assert len(index) == len(model)
    assert all(key in index for key in model)
    assert index.first(count) == ordered[:count]
    matching = [key for key in ordered if key.startswith(prefix)]
    assert index.count_starting_with(prefix) == len(matching)
    assert index.starting_with(prefix, count) == matching[:count]


@given(st.lists(st.tuples(st.sampled_from(["join", "leave", "close"]),
                          st.integers(0, 5), st.integers(0, 6))),
       st.integers(0, 8))
def test_room_index_lists_largest_first(steps, count):
    """After any joins, leaves and closings the index lists rooms as sorting them would."""
    index = RoomIndex()
    rooms = {}
    users = [User(f"u{n}", StubClient()) for n in range(7)]
    for step, room_number, user_number in steps:
        key = f"r{room_number}"
        room = rooms.get(key)
        if step == "close":
            if room is not None:
                index.discard(room)
                del rooms[key]
            continue
        if room is None:
            room = rooms[key] = Room(key, index=index)
            index.add(room)
        if step == "join":
            room.add(users[user_number])
        else:
            room.remove(users[user_number])
    expected = sorted(rooms.values(), key=lambda r: (-len(r), r.key))
    assert index.largest(count) == expected[:count]
    assert len(index) == len(rooms)
    assert index.starting_with("r", count) == sorted(rooms.values(), key=lambda r: r.key)[:count]


def test_closed_room_changes_are_ignored():
    """A room no longer filed (or replaced under its key) does not disturb the index."""
    index = RoomIndex()
    old = Room("a", index=index)
    index.add(old)
    new = Room("a", index=index)
    index.add(new)
    old.add(User("x", StubClient()))
    assert index.largest(5) == [new]
    index.discard(old)
    assert index.get("a") is new
