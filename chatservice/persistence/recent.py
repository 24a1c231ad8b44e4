"""
The last few lines of each room, kept in memory next to the database.

Entering a room replays its last lines.  Read from the database, that is a
round trip to the store's thread for every join: a login storm of 10,000
waits on 10,000 reads, and lines said meanwhile reach the newcomer before
the history they follow.  L{RecentHistory} keeps the last C{size} lines of
each room that has been read once, so every later replay is answered at
once, in order, from memory.  Only C{/history} beyond C{size} lines goes
to the database, on the store's reader thread (L{ChatStore.read_history}),
so that it never delays a commit.
"""

import collections
from typing import Deque, Dict, List

from twisted.internet import defer

from .records import HistoryLine
from .store import ChatStore


class _Loading:
    """A room whose recent lines are being read: what came meanwhile, who waits."""

    def __init__(self) -> None:
        self.said: List[tuple] = []
        self.waiting: List[defer.Deferred] = []


class RecentHistory:
    """
    Records room lines to C{store} and remembers the last C{size} of each
    room that has been read, so that L{lines} answers from memory.

    @ivar size: lines kept per room.
    """

    def __init__(self, store: ChatStore, size: int) -> None:
        self.store = store
        self.size = size
        self._rooms: Dict[str, Deque[tuple]] = {}
        self._loading: Dict[str, _Loading] = {}

    def record(self, room_key: str, when: float, kind: str, sender: str, text: str) -> None:
        """Store one room line, and remember it if the room's recent lines are known."""
        self.store.record_line(room_key, when, kind, sender, text)
        # A plain tuple, made a HistoryLine only when read: this is on the
        # path of every message said.
        recent = self._rooms.get(room_key)
        if recent is not None:
            recent.append((0, when, kind, sender, text))
        elif room_key in self._loading:
            self._loading[room_key].said.append((0, when, kind, sender, text))

    def lines(self, room_key: str, count: int) -> defer.Deferred:
        """
        Fire with the last C{count} lines of the room, oldest first: at once
        when they are in memory, else after the database answers.
        """
        if count <= 0:
            return defer.succeed([])
        if count > self.size:
            return self.store.read_history(room_key, count)
        recent = self._rooms.get(room_key)
        if recent is not None:
            return defer.succeed(_last(recent, count))
        loading = self._loading.get(room_key)
        if loading is None:
            loading = self._loading[room_key] = _Loading()
            self.store.history(room_key, self.size).addBoth(self._loaded, room_key, loading)
        waiter: defer.Deferred = defer.Deferred()
        loading.waiting.append(waiter)
        return waiter.addCallback(_last, count)

    def _loaded(self, result, room_key: str, loading: _Loading) -> None:
        if self._loading.get(room_key) is loading:
            del self._loading[room_key]
            if isinstance(result, list):
                # The read saw every line recorded before it was asked for;
                # the ones recorded since follow it.
                self._rooms[room_key] = collections.deque(
                    result + loading.said, maxlen=self.size)
        for waiter in loading.waiting:
            if isinstance(result, list):
                waiter.callback(result + loading.said)  # made HistoryLines by _last
            else:
                waiter.errback(result)
        return None

    def in_memory(self, count: int) -> bool:
        """Whether the last C{count} lines of a room are answered from memory
        (after the room's first read), not by a read of the database."""
        return count <= self.size

    def forget(self, room_key: str) -> None:
        """Drop a room's lines from memory (the room is gone; the database keeps them)."""
        self._rooms.pop(room_key, None)
        self._loading.pop(room_key, None)

    def rooms_in_memory(self) -> int:
        """How many rooms have their recent lines in memory."""
        return len(self._rooms)


def _last(lines, count: int) -> List[HistoryLine]:
    """The last C{count} of C{lines} (a list or a deque of tuples), oldest first."""
    lines = list(lines)
    if count < len(lines):
        lines = lines[-count:]
    return [HistoryLine._make(line) for line in lines]

