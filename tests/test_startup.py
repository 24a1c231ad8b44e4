"""
Starting and stopping in this process: C{makeService} only checks (no
thread, no lock, no open database: C{twistd} may fork after it), and
C{startService} starts; a database taken in between is one critical line.
"""

import os
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher

from chatservice.core.chat import Chat
from chatservice.frontends.line.factory import ChatFactory
from chatservice.persistence import remember
from chatservice.persistence import store as store_module
from chatservice.persistence.store import SCHEMA_VERSION, StoreError
from chatservice.service import StartupFailure
from chatservice.tap import Options, makeService
from dbfile import query
from netclient import wait


@pytest.fixture
def log_events():
    """Collect every event logged through twisted.logger during the test."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def logged(events, level=None):
    """The formatted messages of C{events} (at C{level}, a name such as 'critical')."""
    return [formatEvent(event) for event in events
            if level is None or event["log_level"].name == level]


def chat_options(tmp_path, *args) -> Options:
    """Parsed C{twistd chat} options on an ephemeral loopback port, state in C{tmp_path}."""
    options = Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1",
                          "--data-dir", str(tmp_path / "data"), *args])
    return options


def open_files(path) -> list:
    """The files of this process whose names start with C{path} (the database, -wal, -shm)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def lock_is_free(path) -> bool:
    """Whether another server could lock the database C{path} now (the lock is then released)."""
    try:
        held = store_module._lock_database(str(path))
    except StoreError:
        return False
    if held is not None:
        held.close()
    return True


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


# -- make, then start ---------------------------------------------------------------


@needs_proc
@pytest_twisted.inlineCallbacks
def test_make_service_checks_the_database_but_starts_and_holds_nothing(tmp_path):
    """makeService creates and upgrades the database but leaves no thread, no lock and no open file behind (twistd forks after it); startService starts the writer and takes the lock under this pid; stopService lets both go."""
    from twisted.internet import reactor

    database = tmp_path / "data" / "chat.db"
    before = set(threading.enumerate())
    top = makeService(chat_options(tmp_path), reactor)
    assert [t.name for t in set(threading.enumerate()) - before] == []
    assert query(database, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert open_files(database) == []
    assert lock_is_free(database)

    top.startService()
    try:
        started = [t.name for t in set(threading.enumerate()) - before]
        assert "chatservice-store" in started, started
        assert not lock_is_free(database)
        assert (tmp_path / "data" / "chat.db.lock").read_text() == str(os.getpid())
        assert open_files(database)
        yield wait(top.store.flush())
    finally:
        yield wait(defer.maybeDeferred(top.stopService))
    assert lock_is_free(database)
    assert "chatservice-store" not in [t.name for t in threading.enumerate()]


class RecordingStore:
    """Just enough of a L{ChatStore} for a chat: it records the reads asked of it."""

    history_limit = 0

    def __init__(self) -> None:
        self.reads = []
        self.registered = set()

    def history(self, room_key, limit=20, before_id=None):
        """Record the read; it never answers."""
        self.reads.append((room_key, limit))
        return defer.Deferred()

    def is_registered(self, key):
        """Nobody is registered."""
        return False


def test_the_chat_reads_the_default_room_when_started_not_when_made():
    """Chat() and ChatFactory() ask the store for nothing (it may not be started: twistd forks after makeService); Chat.start() reads the default room's recent lines."""
    store = RecordingStore()
    clock = task.Clock()
    accounts, recent = remember(store, clock, 7)
    chat = Chat(clock=clock, store=store, accounts=accounts, recent=recent, replay_lines=7)
    ChatFactory(chat)
    assert store.reads == []
    chat.start()
    assert store.reads == [("lobby", 7)]


def test_a_database_taken_between_the_check_and_the_start_is_one_critical_line(
        tmp_path, log_events, capfd):
    """If another server locks the database after makeService checked it, startService logs one critical line, writes it to stderr, and raises StartupFailure (exit status 1, no traceback); nothing is started."""
    from twisted.internet import reactor

    top = makeService(chat_options(tmp_path), reactor)
    database = tmp_path / "data" / "chat.db"
    other = store_module._lock_database(str(database))  # as if another server
    try:
        with pytest.raises(StartupFailure) as failure:
            top.startService()
    finally:
        other.close()
    reason = (f"the database {database} is in use by another chat server (pid {os.getpid()}): "
              f"stop it, or give this one its own --data-dir or --database")
    assert str(failure.value) == reason
    assert failure.value.code == 1
    assert isinstance(failure.value, SystemExit) and isinstance(failure.value, Exception)
    assert logged(log_events, "critical") == [f"the server cannot start: {reason}"]
    # (Until twistd begins logging, Twisted also copies critical events to stderr.)
    assert capfd.readouterr().err.splitlines().count(f"twistd chat: {reason}") == 1
    assert top.store._thread is None
    assert lock_is_free(database)
