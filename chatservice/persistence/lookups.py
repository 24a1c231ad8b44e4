"""
The store's admin look-ups: slow reads for the admin shell, run on the
reader thread on committed data (a base of
L{ChatStore<chatservice.persistence.store.ChatStore>}).
"""

import collections
from typing import TYPE_CHECKING, Callable, Optional

from twisted.internet import defer

from . import queries
from .records import StoreError

if TYPE_CHECKING:
    from .reader import Reader


class AdminLookups:
    """The admin shell's look-ups of a L{ChatStore<chatservice.persistence.store.ChatStore>}."""

    if TYPE_CHECKING:  # what ChatStore, the class this is a base of, provides
        _reader: Optional[Reader]
        _accepting: bool
        _queue: "collections.deque"
        lines_written: int
        writes_dropped: int
        offline_dropped: int
        batches: int
        batches_failed: int
        busy_seconds: float

    # -- admin look-ups (reader thread, committed data) -------------------

    def _read(self, fn: Callable, *args) -> defer.Deferred:
        if self._reader is None or not self._accepting:
            return defer.fail(StoreError("cannot read: the database is closed"))
        return self._reader.submit(fn, args)

    def accounts(self, pattern: Optional[str] = None, limit: int = 50) -> defer.Deferred:
        """
        Fire with up to C{limit} L{Account}s whose key contains C{pattern}
        (pass a name key; all accounts if L{None}), by key.
        """
        return self._read(queries.accounts, pattern, limit)

    def account_info(self, key: str) -> defer.Deferred:
        """
        Fire with an L{AccountInfo} for C{key} (waiting offline messages,
        history lines said under the account's name), or L{None}.
        """
        return self._read(queries.account_info, key)

    def search_history(self, text: Optional[str] = None, room_key: Optional[str] = None,
                       sender: Optional[str] = None, limit: int = 50,
                       before_id: Optional[int] = None) -> defer.Deferred:
        """
        Fire with the newest C{limit} history lines (as L{FoundLine}s,
        oldest first) containing C{text}, in room C{room_key}, from
        C{sender} (case-insensitive for ASCII); every criterion is optional.
        """
        return self._read(queries.search_history, text, room_key, sender, limit, before_id)

    def history_rooms(self) -> defer.Deferred:
        """Fire with a L{RoomHistory} for every room that has history."""
        return self._read(queries.history_rooms)

    def stats(self) -> defer.Deferred:
        """
        Fire with a dict of counts (accounts, history lines, rooms with
        history, offline messages, file size in bytes) and of the writer's
        counters.
        """
        counters = {
            "lines_written": self.lines_written,
            "writes_dropped": self.writes_dropped,
            "offline_dropped": self.offline_dropped,
            "batches": self.batches,
            "batches_failed": self.batches_failed,
            "writer_busy_seconds": round(self.busy_seconds, 3),
            "queued": len(self._queue),
        }
        return self._read(queries.stats).addCallback(lambda found: {**found, **counters})
