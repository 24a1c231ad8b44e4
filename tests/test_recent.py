"""
L{RecentHistory}: the last lines of each room in memory, over a fake store
whose reads the test answers by hand.
"""

from twisted.internet import defer
from twisted.python.failure import Failure

from chatservice.persistence.recent import RecentHistory
from chatservice.persistence.records import HistoryLine


class FakeStore:
    """Records history writes; each history read waits until the test answers it."""

    history_limit = 0

    def __init__(self) -> None:
        self.recorded = []
        self.reads = []
        self.long_reads = []  # on the reader thread

    def record_line(self, room_key, when, kind, sender, text):
        self.recorded.append((room_key, when, kind, sender, text))

    def history(self, room_key, count):
        d = defer.Deferred()
        self.reads.append((room_key, count, d))
        return d

    def read_history(self, room_key, count):
        d = defer.Deferred()
        self.long_reads.append((room_key, count, d))
        return d


def line(n, sender="alice", kind="say"):
    """A stored line numbered C{n}."""
    return HistoryLine(n, float(n), kind, sender, f"line {n}")


def texts(lines):
    return [l.text for l in lines]


def fired(d):
    """The result C{d} has already fired with (fails if it has not)."""
    results = []
    d.addBoth(results.append)
    assert results, "not fired yet"
    return results[0]


def test_first_read_goes_to_the_store_later_ones_are_answered_at_once():
    """One read fills the room's lines; the next replay fires at once, with what was said since."""
    store = FakeStore()
    recent = RecentHistory(store, 3)
    first = recent.lines("lobby", 3)
    [(room, count, read)] = store.reads
    assert (room, count) == ("lobby", 3)
    recent.record("lobby", 10.0, "say", "bob", "said while loading")
    read.callback([line(1), line(2)])
    assert texts(fired(first)) == ["line 1", "line 2", "said while loading"]

    recent.record("lobby", 11.0, "act", "carol", "waves")
    assert texts(fired(recent.lines("lobby", 3))) == [
        "line 2", "said while loading", "waves"]
    assert texts(fired(recent.lines("lobby", 1))) == ["waves"]
    assert len(store.reads) == 1
    assert [r[4] for r in store.recorded] == ["said while loading", "waves"]


def test_readers_during_a_load_share_it():
    """Several joins while a room loads make one read; each gets its own count."""
    store = FakeStore()
    recent = RecentHistory(store, 5)
    one, two = recent.lines("lobby", 5), recent.lines("lobby", 1)
    assert len(store.reads) == 1
    store.reads[0][2].callback([line(1), line(2)])
    assert texts(fired(one)) == ["line 1", "line 2"]
    assert texts(fired(two)) == ["line 2"]


def test_more_than_kept_goes_to_the_store():
    """/history beyond the kept lines reads the database, on the reader thread."""
    store = FakeStore()
    recent = RecentHistory(store, 3)
    recent.lines("lobby", 50)
    assert [(r, c) for r, c, _ in store.long_reads] == [("lobby", 50)]
    assert store.reads == []
    assert recent.in_memory(3) and not recent.in_memory(4)
    assert fired(recent.lines("lobby", 0)) == []


def test_a_failed_read_reaches_every_waiter_and_is_not_kept():
    """If the database read fails, the waiters get the failure and the next join reads again."""
    store = FakeStore()
    recent = RecentHistory(store, 3)
    one, two = recent.lines("lobby", 3), recent.lines("lobby", 3)
    store.reads[0][2].errback(Failure(RuntimeError("disk on fire")))
    for d in (one, two):
        assert fired(d).check(RuntimeError)
    recent.lines("lobby", 3)
    assert len(store.reads) == 2


def test_forgotten_room_is_read_again():
    """A room that went away is dropped from memory; lines said meanwhile are still stored."""
    store = FakeStore()
    recent = RecentHistory(store, 3)
    recent.lines("rust", 3)
    store.reads[0][2].callback([line(1)])
    assert recent.rooms_in_memory() == 1
    recent.forget("rust")
    assert recent.rooms_in_memory() == 0
    recent.record("rust", 5.0, "say", "bob", "stored only")
    assert store.recorded[-1][4] == "stored only"
    recent.lines("rust", 3)
    assert len(store.reads) == 2


def test_forgetting_during_a_load_still_answers_the_waiters():
    """The waiters of a load still get their lines if the room goes while it runs; nothing is kept."""
    store = FakeStore()
    recent = RecentHistory(store, 3)
    waiting = recent.lines("rust", 3)
    recent.forget("rust")
    store.reads[0][2].callback([line(1)])
    assert texts(fired(waiting)) == ["line 1"]
    assert recent.rooms_in_memory() == 0
