"""
The store's reader: one thread of a Twisted L{ThreadPool} with its own
read-only connection, for the admin look-ups and long C{/history} reads, so
that a slow scan never holds up the writer.  Started and stopped with the
store (in C{startService} and C{stopService}).
"""

import sqlite3
from typing import Callable, Optional

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from .records import StoreError

#: Seconds SQLite waits for a lock held by another program.
BUSY_TIMEOUT = 5.0


class Reader:
    """
    Runs read-only queries on one thread of its own, in order, each on the
    reader's connection (opened on first use, in that thread).
    """

    def __init__(self, path: str, reactor) -> None:
        self.path = path
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="chatservice-store-reader")
        self._conn: Optional[sqlite3.Connection] = None
        self._stopped = False

    def start(self) -> None:
        """Start the thread."""
        self._pool.start()

    def submit(self, fn: Callable, args: tuple) -> defer.Deferred:
        """Run C{fn(conn, *args)} on the reader thread; fire with its result."""
        if self._stopped:
            return defer.fail(StoreError("the database is closed"))
        return threads.deferToThreadPool(self._reactor, self._pool, self._run, fn, args)

    def _run(self, fn: Callable, args: tuple):
        if self._stopped:
            raise StoreError("the database is closed")
        try:
            if self._conn is None:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT,
                                       check_same_thread=False)
                conn.execute("PRAGMA query_only = ON")
                self._conn = conn
            return fn(self._conn, *args)
        except sqlite3.Error as e:
            raise StoreError(f"reading {self.path} failed ({e})") from None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """
        Stop the thread: a running query is interrupted (where SQLite can:
        not in PyPy's sqlite3), queued reads fail, and the connection is
        closed on the reader thread before it ends.
        """
        self._stopped = True
        interrupt = getattr(self._conn, "interrupt", None)
        if interrupt is not None:
            try:
                interrupt()
            except Exception:  # closed meanwhile
                pass
        if self._pool.started:
            self._pool.callInThread(self._close)
            self._pool.stop()
