"""
The store's writer thread: it owns the database connection, takes what the
reactor queued in batches of one transaction each, commits them, and hands
every result back to the reactor thread after the commit (see
L{chatservice.persistence.store} for the guarantees).  L{WriterThread} is a
base of L{ChatStore<chatservice.persistence.store.ChatStore>}, which holds
the queue and the counters these methods use.
"""

import collections
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Set

from twisted.internet import defer

from . import queries
from .records import AccountExists, StoreError

if TYPE_CHECKING:
    from ..histogram import Histogram


class Call:
    """One queued operation other than a history line: C{fn(conn, *args)}."""

    __slots__ = ("fn", "args", "deferred", "what")

    def __init__(self, fn: Optional[Callable], args: tuple, deferred: Optional[defer.Deferred],
                 what: str) -> None:
        self.fn = fn
        self.args = args
        self.deferred = deferred
        self.what = what


#: Queued by L{ChatStore.close}: commit what came before, then stop.
STOP = Call(None, (), None, "stop")
#: Returned by an operation that has more to do: it is queued again.
AGAIN = object()


class BatchReport:
    """What one batch did, handed from the writer thread to the reactor thread."""

    __slots__ = ("lines_written", "malformed", "lines_lost", "changes_lost", "error",
                 "changed", "recovered")

    def __init__(self) -> None:
        self.lines_written = 0
        self.malformed = 0  # history lines left out because SQLite could not store them
        self.lines_lost = 0  # history lines of a batch that could not be committed
        self.changes_lost = 0  # topics, offline messages, account changes, logins
        self.error: Optional[sqlite3.Error] = None  # why the batch failed
        self.changed = False  # the batch committed at least one change
        self.recovered = False  # the first batch with changes after failures


class Outage:
    """A time when the database could not write: since when, why, what was lost."""

    def __init__(self, since: float, cause: str) -> None:
        self.since = since
        self.cause = cause
        self.lines = 0
        self.changes = 0


class WriterThread:
    """The writer thread's loop and transactions, run by L{ChatStore}."""

    if TYPE_CHECKING:  # what ChatStore, the class this is a base of, provides
        path: str
        batch_interval: float
        history_limit: int
        private_history_limit: int
        prune_chunk: int
        prune_step_seconds: float
        lines_written: int
        batches: int
        busy_seconds: float
        commit_started: Optional[float]
        commit_seconds: "Histogram"
        _failing: bool
        _conn: Optional[sqlite3.Connection]
        _reactor: Any
        _queue: "collections.deque"
        _wake: threading.Event
        _urgent: threading.Event
        _stopping: bool
        _dirty: Set[str]
        _private_dirty: Set[str]

        def _deliver(self, results: list, report: Optional["BatchReport"] = None) -> None: ...
        def _writer_exited(self, error: Optional[BaseException]) -> None: ...

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None, "the writer runs on the connection start() opened"
        queue, wake, urgent = self._queue, self._wake, self._urgent
        interval = self.batch_interval
        monotonic = time.monotonic
        window: Optional[float] = None
        error: Optional[BaseException] = None
        try:
            while True:
                if window is None:
                    wake.wait()
                    window = monotonic()
                delay = window + interval - monotonic()
                if delay > 0:
                    urgent.wait(delay)
                urgent.clear()
                wake.clear()
                drained = monotonic()
                batch = [queue.popleft() for _ in range(len(queue))]
                if batch and self._commit(conn, batch):
                    break
                # Writes that came during the commit have waited since
                # `drained` already: their window started then.
                window = drained if wake.is_set() else None
        except BaseException as e:  # a bug, or MemoryError: reported, never silent
            error = e
        finally:
            try:
                conn.close()
            except Exception:
                pass
            self._reactor.callFromThread(self._writer_exited, error)

    def _commit(self, conn: sqlite3.Connection, batch: list) -> bool:
        """
        Run one batch in one transaction; return whether it held L{STOP}.

        If the transaction fails (a full disk, an I/O error), its history
        lines are lost, and the rest of the batch (reads, account changes,
        offline messages) is tried again without them, together and, if
        that fails too, one by one: reads, and often small changes, still
        go through on a full disk.  What is lost is counted and reported to
        the reactor thread with the results.
        """
        started = self.commit_started = time.monotonic()
        report = BatchReport()
        try:
            results, stop, again = self._transaction(conn, batch, report)
        except sqlite3.Error as e:
            others = [item for item in batch if type(item) is not tuple]
            stop = any(item is STOP for item in others)
            report = BatchReport()
            report.error = e
            report.lines_lost = len(batch) - len(others)
            results, again, done = [], [], False
            if report.lines_lost and others:
                try:
                    results, _, again = self._transaction(conn, others, report)
                    done = True
                except sqlite3.Error:
                    pass
            if not done:
                # One at a time: on a full disk SQLite may roll back a whole
                # transaction for one change that does not fit.
                results, again = [], []
                report.changes_lost = 0
                for item in others:
                    if item is STOP:
                        continue
                    try:
                        found, _, more = self._transaction(conn, [item], report)
                    except sqlite3.Error as failed:
                        if item.fn in queries.CHANGES:
                            report.changes_lost += 1
                        if item.deferred is not None:
                            results.append((item.deferred, False, StoreError(
                                f"the database {self.path} could not {item.what} "
                                f"({failed})"), item.what))
                        continue
                    results.extend(found)
                    again.extend(more)
            report.changed = False  # a batch that lost its lines does not end an outage
        else:
            self.lines_written += report.lines_written
            self.batches += 1
        if again:
            self._queue.extend(again)
            self._wake.set()
        took = time.monotonic() - started
        self.commit_started = None
        self.busy_seconds += took
        self.commit_seconds.observe(took)
        if report.error is not None:
            self._failing = True
        elif self._failing and report.changed:
            self._failing = False
            report.recovered = True
        if results or report.error is not None or report.recovered or report.malformed:
            self._reactor.callFromThread(self._deliver, results, report)
        return stop

    def _transaction(self, conn: sqlite3.Connection, batch: list, report: "BatchReport"):
        """
        Run C{batch} in one transaction and commit it; return its results,
        whether it held L{STOP}, and the operations to queue again.  Raise
        the C{sqlite3.Error} that stopped it (after rolling back).
        """
        results: list = []
        stop = False
        again = []
        changes = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            i, n = 0, len(batch)
            while i < n:
                item = batch[i]
                if type(item) is tuple:
                    j = i + 1
                    while j < n and type(batch[j]) is tuple:
                        j += 1
                    rows = batch[i:j]
                    bad = self._insert_lines(conn, rows)
                    report.lines_written += j - i - bad
                    report.malformed += bad
                    i = j
                    continue
                i += 1
                if item is STOP:
                    stop = True
                    continue
                try:
                    value = item.fn(conn, *item.args)
                except (AccountExists, sqlite3.IntegrityError, ValueError,
                        TypeError, sqlite3.InterfaceError) as e:
                    results.append((item.deferred, False, e, item.what))
                    continue
                except sqlite3.Error as e:
                    if not conn.in_transaction:
                        raise
                    if item.fn in queries.CHANGES:
                        report.changes_lost += 1
                        if report.error is None:
                            report.error = e
                    results.append((item.deferred, False, StoreError(
                        f"the database {self.path} could not {item.what} ({e})"),
                        item.what))
                    continue
                if item.fn is queries.record_private:
                    self._private_dirty.add(item.args[0])
                if value is AGAIN:
                    again.append(item)
                elif item.deferred is not None:
                    results.append((item.deferred, True, value, item.what))
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        report.changed = conn.total_changes != changes
        return results, stop, again

    def _insert_lines(self, conn: sqlite3.Connection, rows: list) -> int:
        """Insert history C{rows}; return how many were malformed and left out."""
        bad = 0
        conn.execute("SAVEPOINT lines")
        try:
            conn.executemany(queries.INSERT_LINE, rows)
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, ValueError, TypeError, UnicodeError, OverflowError):
            # A malformed row (a lone surrogate, a wrong type): keep the others.
            conn.execute("ROLLBACK TO lines")
            for row in rows:
                try:
                    conn.execute(queries.INSERT_LINE, row)
                except sqlite3.OperationalError:
                    raise
                except (sqlite3.Error, ValueError, TypeError, UnicodeError, OverflowError):
                    bad += 1
        conn.execute("RELEASE lines")
        self._dirty.update({row[0] for row in rows})
        return bad

    def _prune_step(self, conn: sqlite3.Connection, state: "PruneState") -> Any:
        deadline = time.monotonic() + self.prune_step_seconds
        if state.rooms is None:
            state.rooms = self._prune_keys(conn, state, "history", "room_key", self._dirty,
                                           self.history_limit)
        if state.owners is None:
            state.owners = self._prune_keys(conn, state, "private_history", "owner_key",
                                            self._private_dirty, self.private_history_limit)
        for keys, table, column, limit in (
                (state.rooms, "history", "room_key", self.history_limit),
                (state.owners, "private_history", "owner_key", self.private_history_limit)):
            if not self._prune_table(conn, state, keys, table, column, limit, deadline):
                # More may remain: let the other writes in, then carry on
                # (unless the store is closing: what is left waits for the
                # next start).
                return state.deleted if self._stopping else AGAIN
        return state.deleted

    @staticmethod
    def _prune_keys(conn: sqlite3.Connection, state: "PruneState", table: str, column: str,
                    dirty: Set[str], limit: int) -> List[str]:
        """The keys (rooms, accounts) of C{table} to prune: all at start-up, else C{dirty}'s."""
        if not limit:
            dirty.clear()
            return []
        if not state.every_room:
            keys = sorted(dirty)
            dirty.clear()
            return keys
        keys = []
        row = conn.execute(f"SELECT min({column}) FROM {table}").fetchone()
        while row[0] is not None:  # one index seek per key
            keys.append(row[0])
            row = conn.execute(f"SELECT min({column}) FROM {table} WHERE {column} > ?",
                               (row[0],)).fetchone()
        dirty.clear()
        return keys

    def _prune_table(self, conn: sqlite3.Connection, state: "PruneState", keys: List[str],
                     table: str, column: str, limit: int, deadline: float) -> bool:
        """
        Delete the rows of C{table} beyond the newest C{limit} of each of
        C{keys} (popped as they are done); return whether all are done
        (false: the step's time is up).
        """
        while keys:
            key = keys[-1]
            row = conn.execute(f"SELECT id FROM {table} WHERE {column} = ? ORDER BY id DESC"
                               " LIMIT 1 OFFSET ?", (key, limit)).fetchone()
            if row is None:  # nothing beyond the limit
                keys.pop()
                continue
            # Delete the oldest rows up to the newest one beyond the limit,
            # at most prune_chunk at a time.
            bound = conn.execute(f"SELECT id FROM {table} WHERE {column} = ? AND id <= ?"
                                 " ORDER BY id LIMIT 1 OFFSET ?",
                                 (key, row[0], self.prune_chunk - 1)).fetchone()
            upto = row[0] if bound is None else bound[0]
            state.deleted += conn.execute(f"DELETE FROM {table} WHERE {column} = ? AND id <= ?",
                                          (key, upto)).rowcount
            if time.monotonic() > deadline:
                return False
        return True


class PruneState:
    """The progress of one prune across its steps."""

    def __init__(self, every_room: bool) -> None:
        self.every_room = every_room
        self.rooms: Optional[List[str]] = None  # still to do; None: not started
        self.owners: Optional[List[str]] = None  # accounts' private history, likewise
        self.deleted = 0


