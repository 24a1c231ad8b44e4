"""
The chat's memory on disk: accounts, room history, topics and offline
messages, kept in one SQLite file that needs no set-up.

L{ChatStore} here is the API; its start-up, shutdown and the handling of
each batch's results are in L{chatservice.persistence.lifecycle}, the admin
look-ups in L{chatservice.persistence.lookups}, registered rooms in
L{chatservice.persistence.rooms}, its writer thread's loop and
transactions in L{chatservice.persistence.writer}, the SQL it runs in
L{chatservice.persistence.queries}, the schema and the start-up checks in
L{chatservice.persistence.schema}, the reader thread in
L{chatservice.persistence.reader}, the lock file and the diagnosis of disk
trouble in L{chatservice.persistence.disk}, and the records it hands out in
L{chatservice.persistence.records}.

Threads
=======

The reactor thread never touches the disk.  One I{writer thread} owns the
database connection; the reactor hands it work through one queue:

  - Writes are fire-and-forget and cheap: L{ChatStore.record_line} appends a
    tuple to a C{collections.deque} and sets a C{threading.Event} if it is
    not set already.  They never block and never raise.  An offline
    message (L{ChatStore.queue_offline}) is queued the same way but fires
    a L{Deferred} once committed, so that its sender is told the truth.
  - Reads and account changes (L{ChatStore.get_account},
    L{ChatStore.history}, L{ChatStore.take_offline}, ...) go through the
    same queue and return a L{Deferred} that fires on the reactor thread.
    Because the queue is one queue, a read sees every write queued before
    it.  They are I{urgent}: the writer starts a batch at once instead of
    waiting for the batch window.

The writer wakes at the first queued item, waits at most C{batch_interval}
(0.1 s) for more, takes everything queued and runs it in B{one}
transaction: consecutive history lines with one C{executemany}, each other
operation in order.  After the C{COMMIT} it hands every result back to the
reactor with one C{callFromThread}, so a Deferred never fires before its
change is committed.  A batch that arrives while the previous one commits
is started as soon as that commit ends if its window is already over.

Long reads of room history (L{ChatStore.read_history}, for C{/history}
beyond the lines kept in memory) and the slow look-ups for the admin
shell (L{ChatStore.accounts},
L{ChatStore.search_history}, L{ChatStore.history_rooms},
L{ChatStore.account_info}, L{ChatStore.stats}) run on a second thread with
its own read-only connection, so a scan never delays the writer; they see
what is committed (L{ChatStore.read_history} waits for the lines queued
before it; for the admin look-ups call L{ChatStore.flush} first).

Durability
==========

The database is in WAL mode with C{synchronous=NORMAL}: a commit is a
C{write} to the C{-wal} file, which survives the process being killed, and
the file is always consistent.  So:

  - after L{ChatStore.close} (flushes the queue, commits, stops the thread)
    nothing recorded before it is missing;
  - after C{SIGKILL} only what was queued in the last batch window (plus
    what came during the commit then in progress) can be missing, as long
    as the writer keeps up: it commits a few hundred thousand lines a
    second, far above any chat's rate;
  - after a power failure a few more recent transactions can be lost (not
    fsynced until a checkpoint), but the file stays consistent;
  - while the disk is full (or fails), each batch that cannot be committed
    loses its history lines; the rest of it is tried again without them
    (reads, and small changes, often still go through).  Every line and
    change lost is counted in C{writes_dropped}, the Deferreds of lost
    changes fail with L{StoreError}, and the log gets one line when the
    outage starts (naming the cause, see L{disk_trouble}) and one when it
    ends, with what it cost.

One server per database: L{ChatStore.start} takes an exclusive C{flock} on
C{PATH.lock} (holding the server's pid) and refuses to open a database
another process holds.  The kernel drops the lock when the process ends.

Schema
======

See L{chatservice.persistence.schema}: the tables, their versions and the
migrations.

Times are Unix times (floats).  Nothing here logs a password hash or what
people said.

Use
===

At start-up (synchronous; L{StoreError} carries a one-sentence reason)::

    store = ChatStore(path, reactor, batch_interval=0.1, history_limit=10000)
    loaded = store.check()    # Loaded(topics={room_key: Topic(topic, set_by, set_at)},
                              #        registered={name keys})  -- the same set as
                              # store.registered, kept current; store.is_registered(key)
    store.start()             # after the fork: the lock, the threads, the prune
    # (store.open() does both, for a store used where it is made: tests, tools)

Fire-and-forget writes (reactor thread; never block, never raise)::

    store.record_line(room_key, when, kind, sender, text)   # kind in KINDS
    store.set_topic(room_key, topic, set_by, when)          # "" clears it
    store.record_private(owner_key, peer_key, when, kind, sender, recipient, text,
                         outgoing)                          # a registered account's line
    store.record_login(key, when)                           # accounts.last_seen
    store.save_room(record)                                 # a registered room's RoomRecord
    store.drop_room(room_key)                               # forget its registration

Ordered reads and account changes (Deferreds fired on the reactor thread
after the commit)::

    store.get_account(key)                          -> Account or None
    store.create_account(key, name, password_hash, when)
                                                    -> Account, or AccountExists
    store.set_password(key, password_hash)          -> bool (account exists)
    store.delete_account(key)                       -> bool
    store.history(room_key, limit=20, before_id=None) -> [HistoryLine], oldest first
    store.read_history(room_key, limit)             -> [HistoryLine], oldest first: the
                                                       lines recorded before the call,
                                                       read on the reader thread
    store.private_history(owner_key, peer_key, limit) -> [PrivateLine], oldest first
                                                       (reader thread, after the writes
                                                       queued before)
    store.private_targets(owner_key, start, end, limit) -> [PrivateTarget]
    store.take_offline(recipient_key)               -> [OfflineMessage], deleted
    store.queue_offline(recipient_key, sender, text, when, action=False)
                                                    -> True once committed, False if
                                                       not kept (not urgent: fires
                                                       within one batch window)
    store.flush()                                   -> None, once all before is committed
    store.prune()                                   -> lines deleted

Admin look-ups (reader thread, committed data)::

    store.accounts(pattern=None, limit=50)          -> [Account]
    store.account_info(key)                         -> AccountInfo or None
    store.search_history(text=None, room_key=None, sender=None, limit=50,
                         before_id=None)            -> [FoundLine], oldest first
    store.history_rooms()                           -> [RoomHistory]
    store.stats()                                   -> dict of counts and counters

At shutdown (in C{stopService})::

    yield store.close()       # commits everything queued first

Limits: C{history_limit} lines per room and C{private_history_limit}
private lines per account (both pruned at start-up and every
C{prune_interval} seconds, in short steps), C{max_offline} waiting private
messages per recipient, C{max_backlog} writes waiting in memory.
"""

import collections
import os
import sqlite3
import threading
from typing import IO, Callable, Dict, List, Optional, Set

from twisted.internet import defer
from twisted.logger import Logger

from ..core.limits import REPLAY_LINES
from ..histogram import Histogram
from . import queries
from .lifecycle import CLOSE_TIMEOUT, StoreLifecycle  # noqa: F401 (CLOSE_TIMEOUT: re-exported)
from .lookups import AdminLookups
from .reader import Reader
from .records import Account, StoreError
from .rooms import RoomStore
from .writer import Call, Outage, PruneState

#: The database's file name inside the data directory.
DATABASE_FILE = "chat.db"
#: Longest time a write waits in memory before it is committed, in seconds.
BATCH_INTERVAL = 0.1
#: Lines of history kept per room by default (0 keeps everything).
HISTORY_LIMIT = 10000
#: Lines of private history kept per registered account by default, all its
#: conversations together (0 keeps everything); pruned with the room history.
PRIVATE_HISTORY_LIMIT = 10000
#: Seconds between two background prunes of the history.
PRUNE_INTERVAL = 300.0
#: History rows one prune statement deletes at most.
PRUNE_CHUNK = 1000
#: Longest a prune runs before letting other writes in (it then carries on
#: in the next batch), in seconds.
PRUNE_STEP_SECONDS = 0.02
#: Offline messages kept for one recipient; later ones are dropped.
MAX_OFFLINE = 100
#: Writes waiting in memory at most; beyond this new history lines are
#: dropped (and counted) rather than let memory grow without bound.
MAX_BACKLOG = 1000000
#: Upper bounds, in seconds, of the buckets of L{ChatStore.commit_seconds}.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                  2.5, 5.0, 10.0)


def default_database_path(data_dir: str) -> str:
    """Return where the database lives in C{data_dir}."""
    return os.path.join(data_dir, DATABASE_FILE)


class ChatStore(RoomStore, AdminLookups, StoreLifecycle):
    """
    Accounts, room history, topics and offline messages in SQLite, written
    by one background thread in batched transactions (see the module
    docstring for the guarantees).

    @ivar path: the database file.
    @ivar registered: the registered name keys (filled by L{check}, updated
        when accounts are created or deleted through this store).
    @ivar offline_waiting: offline messages waiting, by recipient key
        (filled by L{check}, kept current by L{queue_offline},
        L{take_offline} and L{delete_account}); the C{max_offline} cap is
        checked against it, so the sender of a refused message is told.
    @ivar lines_written: history lines committed so far.
    @ivar writes_dropped: writes not stored: refused (store not open,
        closing, or more than C{max_backlog} writes waiting), or lost with
        a batch that could not be committed (history lines and other
        changes alike), or malformed history lines.
    @ivar batches: transactions committed so far.
    @ivar batches_failed: batches whose transaction failed (their history
        lines are lost).
    @ivar last_error: SQLite's error for the last failed batch while the
        database cannot write, else L{None}.
    @ivar commit_seconds: a L{Histogram} of how long each batch took
        (writer thread).
    @ivar commit_started: when (C{time.monotonic()}) the batch in progress
        started, or L{None} between batches.
    """

    log = Logger()

    def __init__(self, path: str, reactor, batch_interval: float = BATCH_INTERVAL,
                 history_limit: int = HISTORY_LIMIT,
                 prune_interval: float = PRUNE_INTERVAL,
                 max_offline: int = MAX_OFFLINE, max_backlog: int = MAX_BACKLOG,
                 quick_check: bool = True, prune_chunk: int = PRUNE_CHUNK,
                 prune_step_seconds: float = PRUNE_STEP_SECONDS,
                 private_history_limit: int = PRIVATE_HISTORY_LIMIT) -> None:
        """
        @param path: the database file (created with its directory if missing).
        @param reactor: provides C{callFromThread} and C{callLater}.
        @param batch_interval: longest wait, in seconds, between a write being
            queued and the transaction that commits it starting.
        @param history_limit: lines kept per room (0: keep everything).
        @param prune_interval: seconds between background prunes (0: only
            the one at start-up).
        @param max_offline: offline messages kept per recipient (0: no limit).
        @param max_backlog: writes waiting in memory at most (0: no limit).
        @param quick_check: run C{PRAGMA quick_check} at start-up (reads the
            whole file once: a few seconds per GB).
        @param prune_chunk: history rows one prune statement deletes at most.
        @param prune_step_seconds: longest a prune runs before letting other
            writes in.
        @param private_history_limit: lines of private conversations kept
            per account (0: keep everything), pruned with the room history.
        """
        self.path = os.path.abspath(path)
        self._reactor = reactor
        self.batch_interval = batch_interval
        self.history_limit = history_limit
        self.private_history_limit = private_history_limit
        self.prune_interval = prune_interval
        self.max_offline = max_offline
        self.max_backlog = max_backlog or float("inf")
        self.quick_check = quick_check
        self.prune_chunk = prune_chunk
        self.prune_step_seconds = prune_step_seconds
        self.registered: Set[str] = set()
        self.offline_waiting: Dict[str, int] = {}
        self._lock: Optional[IO[bytes]] = None
        self._checked = False
        self.lines_written = 0
        self.writes_dropped = 0
        self.offline_dropped = 0
        self.batches = 0
        self.batches_failed = 0
        self.last_error: Optional[str] = None
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        self.commit_started: Optional[float] = None
        self.busy_seconds = 0.0
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._conn: Optional[sqlite3.Connection] = None
        self._thread: Optional[threading.Thread] = None
        self._reader: Optional[Reader] = None
        self._accepting = False
        self._stopping = False  # read by the writer thread
        self._exited = False
        self._pending: Dict[defer.Deferred, None] = {}
        self._dirty: Set[str] = set()  # rooms with new lines (writer thread)
        self._private_dirty: Set[str] = set()  # accounts with new private lines (writer thread)
        self._prune_call = None
        self._refused = 0  # writes refused because the writer is behind or closed
        self._failing = False  # the last batch failed (writer thread)
        self._outage: Optional[Outage] = None  # (reactor thread)
        self._close_waiters: Optional[List[defer.Deferred]] = None
        self._close_timeout = None

    # -- writes: fire-and-forget from the reactor thread ------------------

    def record_line(self, room_key: str, when: float, kind: str, sender: str,
                    text: str) -> None:
        """
        Queue one room line for the history (C{kind} is one of L{KINDS};
        C{text} is the message, action, topic or parting message).  Never
        blocks, never raises.
        """
        queue = self._queue
        if self._accepting and len(queue) < self.max_backlog:
            queue.append((room_key, when, kind, sender, text))
            if not self._wake.is_set():
                self._wake.set()
        else:
            self._dropped()

    def set_topic(self, room_key: str, topic: str, set_by: str, when: float) -> None:
        """Queue a room's new topic (an empty topic clears it)."""
        self._write(queries.set_topic, (room_key, topic, set_by, when), "save a topic")

    def queue_offline(self, recipient_key: str, sender: str, text: str, when: float,
                      action: bool = False) -> defer.Deferred:
        """
        Keep a private message for C{recipient_key}, to be handed over by
        L{take_offline} when they next log in.  Fire with C{True} once it is
        committed (within one batch window: this does not hurry the
        writer), so that the sender is told the truth; with C{False} if it
        was not kept: at once if C{max_offline} messages already wait for
        that recipient (counted in C{offline_dropped}) or the writer cannot
        take it, later if the database could not store it.  Never blocks,
        never fails.
        """
        waiting = self.offline_waiting.get(recipient_key, 0)
        if self.max_offline and waiting >= self.max_offline:
            self.offline_dropped += 1
            return defer.succeed(False)
        if not self._accepting or len(self._queue) >= self.max_backlog:
            self._dropped()
            return defer.succeed(False)
        self.offline_waiting[recipient_key] = waiting + 1
        d = self._submit(queries.queue_offline, (recipient_key, sender, text, when, bool(action)),
                         "keep an offline message", urgent=False)

        def lost(failure) -> bool:
            failure.trap(StoreError)
            left = self.offline_waiting.get(recipient_key, 0) - 1
            if left > 0:
                self.offline_waiting[recipient_key] = left
            else:
                self.offline_waiting.pop(recipient_key, None)
            return False

        return d.addCallbacks(lambda _: True, lost)

    def record_private(self, owner_key: str, peer_key: str, when: float, kind: str,
                       sender: str, recipient: str, text: str, outgoing: bool) -> None:
        """
        Queue one line of a private conversation for the registered account
        C{owner_key}: C{sender} sent C{text} to C{recipient} (names as
        shown), C{outgoing} if the account sent it; the other side's name key
        is C{peer_key}.  C{kind} is one of L{PRIVATE_KINDS}.  Fire-and-forget,
        like L{record_line}; the account keeps its last
        C{private_history_limit} lines.
        """
        self._write(queries.record_private,
                    (owner_key, peer_key, when, kind, sender, recipient, text, bool(outgoing)),
                    "record a private line")

    def private_history(self, owner_key: str, peer_key: str, limit: int) -> defer.Deferred:
        """
        Fire with the last C{limit} lines of C{owner_key}'s private
        conversation with C{peer_key} as L{PrivateLine}s, oldest first,
        read on the reader thread once the lines queued before the call
        are committed (as L{read_history}).
        """
        return self._read_after_writes(queries.private_history, owner_key, peer_key,
                                       max(0, int(limit)))

    def private_targets(self, owner_key: str, start: float, end: float,
                        limit: int) -> defer.Deferred:
        """
        Fire with the L{PrivateTarget}s of C{owner_key}: the people with a
        private line between C{start} and C{end} (inclusive), each with the
        time of the last one, earliest first, at most C{limit}.
        """
        return self._read_after_writes(queries.private_targets, owner_key, start, end,
                                       max(0, int(limit)))

    def _read_after_writes(self, fn: Callable, *args) -> defer.Deferred:
        # Wait (at most one batch window: the writer is not hurried) for
        # what was queued before, then read it on the reader thread.
        mark = self._submit(queries.nothing, (), "mark the history", urgent=False)

        def unmarked(failure):
            failure.trap(StoreError)
            if not self._accepting:
                return failure
            return None

        return mark.addErrback(unmarked).addCallback(lambda _: self._read(fn, *args))

    def record_login(self, key: str, when: float) -> None:
        """Queue the time the registered user C{key} logged in (C{last_seen})."""
        self._write(queries.record_login, (key, when), "record a login")

    def _write(self, fn: Callable, args: tuple, what: str) -> bool:
        if self._accepting and len(self._queue) < self.max_backlog:
            self._queue.append(Call(fn, args, None, what))
            self._wake.set()
            return True
        self._dropped()
        return False

    def _dropped(self) -> None:
        self.writes_dropped += 1
        self._refused += 1  # apart from the losses of failed batches, logged as an outage
        if self._refused % 10000 == 1 and self._accepting:
            self.log.warn("the database writer is {backlog} writes behind; "
                          "{dropped} writes dropped so far",
                          backlog=len(self._queue), dropped=self.writes_dropped)

    # -- reads and account changes: Deferreds, in order with the writes ----

    def _submit(self, fn: Callable, args: tuple, what: str,
                urgent: bool = True) -> defer.Deferred:
        if not self._accepting:
            return defer.fail(StoreError(f"cannot {what}: the database is closed"))
        d: defer.Deferred = defer.Deferred()
        self._pending[d] = None
        self._queue.append(Call(fn, args, d, what))
        if urgent:
            self._urgent.set()
        self._wake.set()
        return d

    def get_account(self, key: str) -> defer.Deferred:
        """Fire with the L{Account} registered under C{key}, or L{None}."""
        return self._submit(queries.get_account, (key,), "look up an account")

    def create_account(self, key: str, name: str, password_hash: str,
                       when: float) -> defer.Deferred:
        """
        Register C{name} (whose key is C{key}) with C{password_hash}; fire
        with the new L{Account} once committed (C{key} is in L{registered}
        by then), or fail with L{AccountExists}.
        """
        d = self._submit(queries.create_account, (key, name, password_hash, when),
                         "create an account")

        def registered(account: Account) -> Account:
            self.registered.add(key)
            return account

        return d.addCallback(registered)

    def set_password(self, key: str, password_hash: str) -> defer.Deferred:
        """Store a new password hash for C{key}; fire with whether the account exists."""
        return self._submit(queries.set_password, (key, password_hash), "change a password")

    def delete_account(self, key: str) -> defer.Deferred:
        """
        Delete the account C{key}, its waiting offline messages and its
        history of private conversations; fire with whether it existed.
        """
        d = self._submit(queries.delete_account, (key,), "delete an account")
        self.offline_waiting.pop(key, None)

        def forget(existed: bool) -> bool:
            self.registered.discard(key)
            return existed

        return d.addCallback(forget)

    def is_registered(self, key: str) -> bool:
        """Whether C{key} is a registered name (in memory: no disk access)."""
        return key in self.registered

    def history(self, room_key: str, limit: int = REPLAY_LINES,
                before_id: Optional[int] = None) -> defer.Deferred:
        """
        Fire with the last C{limit} lines of a room (those with an id below
        C{before_id}, if given) as L{HistoryLine}s, oldest first.
        """
        return self._submit(queries.history, (room_key, max(0, int(limit)), before_id),
                            "read the history")

    def read_history(self, room_key: str, limit: int) -> defer.Deferred:
        """
        Fire with the last C{limit} lines of a room as L{HistoryLine}s,
        oldest first, read on the reader thread (its own read-only
        connection) so that a long read never holds up a commit.  They are
        exactly the lines recorded up to this call: it marks the newest
        line queued so far, waits until that is committed (at most one
        batch window: the writer is not hurried), then reads up to it.
        When the mark cannot be committed (the disk is full), the read
        shows what is committed.
        """
        limit = max(0, int(limit))
        mark = self._submit(queries.last_line_id, (), "mark the history", urgent=False)

        def read(upto: Optional[int]) -> defer.Deferred:
            return self._read(queries.history_upto, room_key, limit, upto)

        def unmarked(failure):
            failure.trap(StoreError)
            if not self._accepting:
                return failure
            return read(None)

        return mark.addCallbacks(read, unmarked)

    def take_offline(self, recipient_key: str) -> defer.Deferred:
        """
        Fire with the L{OfflineMessage}s waiting for C{recipient_key}, oldest
        first, deleted from the database in the same transaction.
        """
        # Writes run in order, so the messages queued before this call are
        # the ones it takes: the recipient's mailbox is empty from here on.
        self.offline_waiting.pop(recipient_key, None)
        return self._submit(queries.take_offline, (recipient_key,), "read offline messages")

    @property
    def queued(self) -> int:
        """How many writes and reads wait for the writer thread."""
        return len(self._queue)

    @property
    def writer_running(self) -> bool:
        """Whether the writer thread is running and takes writes."""
        return self._accepting and not self._exited

    @property
    def failing(self) -> Optional[str]:
        """
        Why the database cannot write now, in a few words with SQLite's
        error (C{"the disk is full (database or disk is full)"}), or
        L{None} while it can.
        """
        outage = self._outage
        if outage is None:
            return None
        return f"{outage.cause} ({self.last_error})" if self.last_error else outage.cause

    def flush(self) -> defer.Deferred:
        """Fire once everything queued before this call is committed."""
        return self._submit(queries.nothing, (), "flush")

    def prune(self) -> defer.Deferred:
        """
        Delete history beyond C{history_limit} lines in every room that got
        new lines since the last prune (every room, the first time), and
        private history beyond C{private_history_limit} lines for every
        account that got new private lines (every account, the first
        time); fire with the number of lines deleted.  Big prunes run in steps of
        about C{prune_step_seconds} so that other writes get in between.
        """
        return self._submit(self._prune_step, (PruneState(False),), "prune the history")

    def _periodic_prune(self) -> None:
        self._prune_call = None
        if not self._accepting:
            return
        self.prune().addErrback(lambda f: self.log.failure("pruning the history failed", f))
        self._prune_call = self._reactor.callLater(self.prune_interval, self._periodic_prune)
