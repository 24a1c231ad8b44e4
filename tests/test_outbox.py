"""
Room events from one read are gathered and written to each member at once:
pin down that nobody sees anything out of order, or their own lines.
"""

from conftest import FakeClient


def test_many_lines_in_one_read_arrive_in_order_as_one_write(connect):
    """Ten lines in one read reach the others in order, in a single write each."""
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    alice.take(), bob.take()
    writes = []
    original = carol.transport.write
    carol.protocol._swap_writer(lambda data: (writes.append(data), original(data)))
    bob.feed(b"".join(b"line %d\n" % n for n in range(10)))
    expected = [f"<bob> line {n}" for n in range(10)]
    assert alice.take() == expected
    assert carol.take() == expected
    assert len(writes) == 1
    assert bob.take() == []


def test_private_message_after_room_line_keeps_order(connect):
    """A /msg after a room line in the same read arrives after it."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"hello\n/msg alice psst\nagain\n")
    assert alice.take() == ["<bob> hello", "[private] <bob> psst", "<bob> again"]
    assert bob.take() == ["[private to alice] <bob> psst"]


def test_last_words_before_quit(connect, factory):
    """'bye' then /quit in one read: the room sees the line, then the quit."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"bye all\n/quit gone\n")
    assert alice.take() == ["<bob> bye all", "<- bob quit (gone)"]


def test_room_switch_inside_one_read(connect):
    """Lines to two rooms in one read arrive in order with the right tags."""
    alice, bob = connect("alice"), connect("bob")
    alice.send("/join games")
    bob.send("/join games")
    alice.take(), bob.take()
    bob.feed(b"in games\n/join lobby\nin lobby\n/join games\nin games again\n")
    assert alice.take() == [
        "<bob> in games", "[#lobby] <bob> in lobby", "<bob> in games again"]


def test_member_joining_mid_read_sees_only_later_lines(connect, factory):
    """Someone who joins after a gathered line does not get that line."""
    alice, bob = connect("alice"), connect("bob")
    carol = FakeClient(factory)
    alice.take()
    factory.chat.outbox.gathering = True  # as during a read of bob's
    try:
        factory.chat.say(bob.user, "before carol")
        carol.send("carol")
        factory.chat.say(bob.user, "after carol")
    finally:
        factory.chat.outbox.gathering = False
        factory.chat.outbox.flush()
    carol_lines = carol.take()
    assert "<bob> before carol" not in carol_lines
    assert carol_lines[-1] == "<bob> after carol"
    assert alice.take() == ["<bob> before carol", "-> carol joined #lobby", "<bob> after carol"]


def test_bytes_relayed_counts_batched_writes(connect, factory):
    """The bytes_relayed statistic counts what gathered writes sent."""
    _alice, bob, _carol = connect("alice"), connect("bob"), connect("carol")
    before = factory.chat.stats()["bytes_relayed"]
    bob.feed(b"one\ntwo\n")
    assert factory.chat.stats()["bytes_relayed"] - before == 2 * len(b"<bob> one\r\n<bob> two\r\n")


def test_nested_batches_deliver_once_at_the_outermost_end_even_after_an_error():
    from chatservice.core.delivery import Outbox

    class Plan:
        def __init__(self):
            self.batches = []

        def deliver(self, batch):
            self.batches.append([event for event, _, _ in batch])
            return 0, 0

    class Room:
        plan = Plan()

    outbox, room = Outbox(), Room()
    with outbox.batch():
        outbox.post(room, "one", None)
        with outbox.batch():
            outbox.post(room, "two", None)
        assert room.plan.batches == [] and outbox.gathering
        outbox.post(room, "three", None)
    assert room.plan.batches == [["one", "two", "three"]] and not outbox.gathering
    try:
        with outbox.batch():
            outbox.post(room, "four", None)
            raise ValueError("a bug in a command")
    except ValueError:
        pass
    assert room.plan.batches[-1] == ["four"] and not outbox.gathering
    outbox.post(room, "five", None)  # outside a batch: at once
    assert room.plan.batches[-1] == ["five"]
