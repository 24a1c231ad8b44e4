"""
The store's start-up and shutdown, and what the reactor thread does with
each batch the writer reports: a base of
L{ChatStore<chatservice.persistence.store.ChatStore>}, which holds the
state these methods use (see L{chatservice.persistence.store} for the
guarantees).

Two steps at start-up
=====================

C{twistd} forks to become a daemon between building the service and
starting it, and neither a thread, nor a lock, nor an SQLite connection
survives a fork.  So L{ChatStore.check} (in C{makeService}, before the
fork) does every check that can fail and reads what the chat needs, then
closes everything; L{ChatStore.start} (in C{startService}, in the process
that serves) takes the lock for good and starts the threads.
"""

import os
import sqlite3
import threading
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional

from twisted.internet import defer
from twisted.logger import Logger

from .disk import disk_trouble, lock_database
from .reader import BUSY_TIMEOUT, Reader
from .records import Loaded, StoreError
from .schema import explain, prepare
from .writer import STOP, BatchReport, Call, Outage, PruneState, WriterThread

#: Seconds L{StoreLifecycle.close} waits for the writer before giving up.
CLOSE_TIMEOUT = 10.0


class StoreLifecycle(WriterThread):
    """Opening, checking, starting and closing the store, and the reports of its batches."""

    log = Logger()

    if TYPE_CHECKING:  # what ChatStore, the class this is a base of, provides
        quick_check: bool
        prune_interval: float
        registered: set
        offline_waiting: Dict[str, int]
        writes_dropped: int
        batches_failed: int
        last_error: Optional[str]
        _lock: Optional[IO[bytes]]
        _checked: bool
        _thread: Optional[threading.Thread]
        _reader: Optional[Reader]
        _accepting: bool
        _exited: bool
        _pending: Dict[defer.Deferred, None]
        _prune_call: Any
        _outage: Optional[Outage]
        _close_waiters: Optional[List[defer.Deferred]]
        _close_timeout: Any

        def _periodic_prune(self) -> None: ...

    # -- start-up -----------------------------------------------------------

    def open(self) -> Loaded:
        """
        L{check}, then L{start}: for a store used in the process that makes
        it (tests, tools).  Return what L{check} read.
        """
        if self._conn is not None or self._exited:
            raise RuntimeError("ChatStore.open() called twice")
        loaded = self.check()
        self.start()
        return loaded

    def check(self) -> Loaded:
        """
        Make sure the database can be used, before anything starts: create
        it (and its directory) if missing, check that no other server holds
        it, check it and bring its schema up to date, and return the stored
        topics, registered names and waiting offline messages.  Synchronous,
        on the calling thread, at start-up.  Nothing is left running or
        held: the lock is released and the connection closed again, so the
        process may fork (C{twistd} does, to become a daemon) before
        L{start}.  Raise L{StoreError} if the database cannot be used.
        """
        if self._conn is not None or self._exited:
            raise RuntimeError("ChatStore.check() called after start()")
        path = self.path
        directory = os.path.dirname(path)
        if os.path.lexists(directory) and not os.path.isdir(directory):
            raise StoreError(f"cannot create the directory {directory} for the "
                             f"database {path}: a file of that name is in the way")
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory {directory} for the "
                             f"database {path}: {e.strerror or e}") from None
        if os.path.isdir(path):
            raise StoreError(f"cannot open the database {path}: it is a directory")
        if not os.path.exists(path):
            try:  # created private: it holds password hashes (-wal/-shm follow its mode)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as e:
                raise StoreError(f"cannot create the database {path}: "
                                 f"{e.strerror or e}") from None
        self._lock = lock_database(path)
        try:
            conn = self._connect()
            try:
                loaded = prepare(conn, self.path, self.quick_check)
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise explain(e, self.path) from None
        finally:
            self._unlock()
        self.registered = loaded.registered
        self.offline_waiting = loaded.offline_waiting
        self._checked = True
        return loaded

    def start(self) -> None:
        """
        Take the database for this process and start the work: the lock on
        C{PATH.lock} (holding this process's pid), the writer's connection
        and thread, the reader for admin look-ups, and the background prune
        (one at once, then every C{prune_interval} seconds).  Call it once,
        after L{check}, in the process that serves.  Raise L{StoreError} if
        another server took the database since L{check}, or it cannot be
        opened any more.
        """
        if not self._checked:
            raise RuntimeError("ChatStore.start() called before check()")
        if self._conn is not None or self._exited:
            raise RuntimeError("ChatStore.start() called twice")
        self._lock = lock_database(self.path)
        try:
            conn = self._connect()
        except sqlite3.Error as e:
            self._unlock()
            raise explain(e, self.path) from None
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # per connection; WAL is kept in the file
        except sqlite3.Error as e:
            conn.close()
            self._unlock()
            raise explain(e, self.path) from None
        self._conn = conn
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="chatservice-store",
                                        daemon=True)
        self._thread.start()
        self._reader = Reader(self.path, self._reactor)
        self._reader.start()
        self._queue.append(Call(self._prune_step, (PruneState(True),), None,
                                 "prune the history"))
        self._wake.set()
        if self.prune_interval:
            self._prune_call = self._reactor.callLater(self.prune_interval,
                                                       self._periodic_prune)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)


    # -- shutting down -------------------------------------------------------

    def close(self, timeout: float = CLOSE_TIMEOUT) -> defer.Deferred:
        """
        Commit everything queued, stop the threads and close the database;
        fire when done (also if the writer thread had died, and after
        C{timeout} seconds at worst, with an error logged).  Later writes
        are dropped and later reads fail with L{StoreError}.
        """
        self._accepting = False
        self._stopping = True
        if self._prune_call is not None and self._prune_call.active():
            self._prune_call.cancel()
        self._prune_call = None
        if self._reader is not None:
            self._reader.stop()
        if self._thread is None or self._exited:
            self._exited = True
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass
            self._unlock()
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        if self._close_waiters is None:
            self._close_waiters = []
            self._queue.append(STOP)
            self._urgent.set()
            self._wake.set()
            if timeout:
                self._close_timeout = self._reactor.callLater(timeout, self._close_timed_out)
        self._close_waiters.append(d)
        return d

    def _close_timed_out(self) -> None:
        self._close_timeout = None
        self.log.error("the database writer did not finish within the close timeout; "
                       "{queued} queued writes may be lost", queued=len(self._queue))
        self._fire_close_waiters()

    def _fire_close_waiters(self) -> None:
        waiters, self._close_waiters = self._close_waiters or [], []
        for d in waiters:
            d.callback(None)

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the file releases its lock

    def _writer_exited(self, error: Optional[BaseException]) -> None:
        """Called on the reactor thread when the writer thread ends."""
        self._exited = True
        self._accepting = False
        self._unlock()
        self._end_outage(", until it was closed")
        if error is not None:
            self.log.critical("the database writer stopped: {error!r}", error=error)
        reason = StoreError(f"the database {self.path} is closed"
                            + (f" (the writer failed: {error})" if error else ""))
        pending, self._pending = self._pending, {}
        for d in pending:
            d.errback(reason)
        if self._close_timeout is not None and self._close_timeout.active():
            self._close_timeout.cancel()
        self._close_timeout = None
        if self._close_waiters is not None:
            self._fire_close_waiters()

    def _deliver(self, results: list, report: Optional[BatchReport] = None) -> None:
        """
        Fire the Deferreds of one batch, and count and log what it could
        not store (reactor thread).
        """
        if report is not None:
            self._account_for(report)
        pending = self._pending
        for d, ok, value, what in results:
            pending.pop(d, None)
            if ok:
                d.callback(value)
            else:
                d.errback(value)

    def _account_for(self, report: BatchReport) -> None:
        """
        Count the writes a batch lost in C{writes_dropped}, and log an
        outage once when it starts and once, with what it cost, when it
        ends.
        """
        if report.malformed:
            self.log.error("dropped {bad} malformed history lines", bad=report.malformed)
        self.writes_dropped += report.malformed + report.lines_lost + report.changes_lost
        directory = os.path.dirname(self.path)
        if report.error is not None:
            self.batches_failed += 1
            self.last_error = str(report.error) or type(report.error).__name__
            outage = self._outage
            if outage is None:
                short, cause = disk_trouble(directory, report.error)
                outage = self._outage = Outage(self._reactor.seconds(), short)
                self.log.error(
                    "the database cannot write to {directory}: {cause}; history lines "
                    "and other changes are lost until it can (SQLite: {error})",
                    directory=directory, cause=cause, error=str(report.error))
            outage.lines += report.lines_lost
            outage.changes += report.changes_lost
        elif report.recovered:
            self._end_outage("")

    def _end_outage(self, how: str) -> None:
        outage, self._outage = self._outage, None
        self.last_error = None
        if outage is None:
            return
        self.log.warn(
            "the database could not write to {directory} for {seconds:.0f} s{how}: "
            "{cause}; {lines:,} history lines and {changes:,} other changes were lost",
            directory=os.path.dirname(self.path),
            seconds=self._reactor.seconds() - outage.since, how=how, cause=outage.cause,
            lines=outage.lines, changes=outage.changes)
