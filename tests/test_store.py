"""
The SQLite store (L{chatservice.persistence.store}): schema creation and upgrades,
accounts, history, topics and offline messages surviving a restart,
pruning, start-up errors for unusable databases, and what survives a
clean stop and a C{SIGKILL}.

Stores run with the real reactor (pytest-twisted); every Deferred a test
waits for has a timeout, and every database lives in C{tmp_path}.
"""

import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.logger import Logger, LogLevel, formatEvent

from chatservice.persistence import disk
from chatservice.persistence.records import (
    Account,
    AccountExists,
    HistoryLine,
    OfflineMessage,
    StoreError,
    Topic,
)
from chatservice.persistence.schema import APPLICATION_ID, SCHEMA_VERSION
from chatservice.persistence.store import ChatStore
from dbfile import query
from netclient import wait

#: Seconds to wait for a child process in the SIGKILL test.
TIMEOUT = 10
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH = "$scrypt$n=16384,r=8,p=1$c2FsdA==$aGFzaA=="


@pytest.fixture
def stores():
    """
    Return a function that opens a L{ChatStore} on the real reactor; every
    store still open at the end of the test is closed.
    """
    from twisted.internet import reactor

    opened = []

    def open_store(path, **kwargs):
        store = ChatStore(str(path), reactor, **kwargs)
        opened.append(store)
        return store, store.open()

    yield open_store
    for store in opened:
        pytest_twisted.blockon(wait(store.close()))


def reopen(stores, store, **kwargs):
    """Close C{store}, then open its file again; fire with (store, loaded)."""

    @defer.inlineCallbacks
    def go():
        yield wait(store.close())
        return stores(store.path, **kwargs)

    return go()


# -- creation, reopening and upgrades ------------------------------------------

@pytest_twisted.inlineCallbacks
def test_first_open_creates_a_private_database(stores, tmp_path):
    """
    The first start creates the directory (0700), the file (0600) and the
    schema at the current version, in WAL mode, and finds nothing stored.
    """
    path = tmp_path / "data" / "chat.db"
    store, loaded = stores(path)
    assert loaded.topics == {} and loaded.registered == set()
    assert loaded.registered is store.registered
    yield wait(store.flush())
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(path, "PRAGMA application_id") == [(APPLICATION_ID,)]
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    tables = {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "accounts", "topics", "history", "offline"} <= tables


@pytest_twisted.inlineCallbacks
def test_everything_survives_close_and_reopen(stores, tmp_path):
    """
    Accounts, topics (including a cleared one), room history and offline
    messages not yet taken are all there after a close and a new open.
    """
    store, _ = stores(tmp_path / "chat.db")
    yield wait(store.create_account("alice", "Alice", HASH, 1000.0))
    store.set_topic("lobby", "Welcome!", "Alice", 1001.0)
    store.set_topic("games", "cards", "Bob", 1002.0)
    store.set_topic("games", "", "Bob", 1003.0)
    store.record_line("lobby", 1004.0, "say", "Alice", "hello")
    store.record_line("lobby", 1005.0, "act", "Alice", "waves")
    store.queue_offline("alice", "Bob", "see you later", 1006.0, action=False)
    store.record_login("alice", 1007.0)

    store, loaded = yield reopen(stores, store)
    assert loaded.registered == {"alice"}
    assert loaded.topics == {"lobby": Topic("Welcome!", "Alice", 1001.0)}
    account = yield wait(store.get_account("alice"))
    assert account == Account("alice", "Alice", HASH, 1000.0, 1007.0)
    lines = yield wait(store.history("lobby"))
    assert [(l.when, l.kind, l.sender, l.text) for l in lines] == [
        (1004.0, "say", "Alice", "hello"), (1005.0, "act", "Alice", "waves")]
    messages = yield wait(store.take_offline("alice"))
    assert messages == [OfflineMessage(1006.0, "Bob", "see you later", False)]


def make_v1_database(path):
    """Write a schema version 1 database by hand, the way version 1 made it."""
    conn = sqlite3.connect(str(path))
    conn.executescript(textwrap.dedent(f"""
        CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value);
        CREATE TABLE accounts (key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
            password_hash TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE topics (room_key TEXT PRIMARY KEY NOT NULL, topic TEXT NOT NULL,
            set_by TEXT NOT NULL, set_at REAL NOT NULL);
        CREATE TABLE history (id INTEGER PRIMARY KEY, room_key TEXT NOT NULL,
            at REAL NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
        CREATE INDEX history_by_room ON history (room_key, id);
        CREATE TABLE offline (id INTEGER PRIMARY KEY, recipient_key TEXT NOT NULL,
            at REAL NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,
            action INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX offline_by_recipient ON offline (recipient_key, id);
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = 1;
        INSERT INTO accounts VALUES ('bob', 'Bob', '{HASH}', 50.0);
        INSERT INTO topics VALUES ('lobby', 'old topic', 'Bob', 51.0);
        INSERT INTO history (room_key, at, kind, sender, text)
            VALUES ('lobby', 52.0, 'say', 'Bob', 'from version 1');
        INSERT INTO offline (recipient_key, at, sender, text, action)
            VALUES ('bob', 53.0, 'Carol', 'waves', 1);
    """))
    conn.commit()
    conn.close()


@pytest_twisted.inlineCallbacks
def test_older_schema_is_upgraded_on_open(stores, tmp_path):
    """
    A version 1 database is upgraded to the current version at start-up,
    keeping its data, and the new column (C{accounts.last_seen}) works.
    """
    path = tmp_path / "chat.db"
    make_v1_database(path)
    store, loaded = stores(path)
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert loaded.registered == {"bob"}
    assert loaded.topics == {"lobby": Topic("old topic", "Bob", 51.0)}
    assert (yield wait(store.get_account("bob"))) == Account("bob", "Bob", HASH, 50.0, None)
    store.record_login("bob", 60.0)
    assert (yield wait(store.get_account("bob"))).last_seen == 60.0
    lines = yield wait(store.history("lobby"))
    assert [line.text for line in lines] == ["from version 1"]
    assert (yield wait(store.take_offline("bob"))) == [OfflineMessage(53.0, "Carol", "waves", True)]


@pytest_twisted.inlineCallbacks
def test_a_database_in_use_is_refused_until_closed(stores, tmp_path):
    """A second store on an open database is refused, naming the holder's pid; once the first closes, the database opens again."""
    path = tmp_path / "chat.db"
    first, _ = stores(path)
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value) == (
        f"the database {path} is in use by another chat server (pid {os.getpid()}): "
        f"stop it, or give this one its own --data-dir or --database")
    yield wait(first.close())
    again, _ = stores(path)
    assert again.is_registered("nobody") is False


def test_newer_schema_is_refused(tmp_path):
    """A database from a newer chatservice is refused with a clear message."""
    path = tmp_path / "chat.db"
    make_v1_database(path)
    query(path, "PRAGMA user_version = 99")
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value) == (
        f"cannot open the database {path}: it was written by a newer chatservice "
        f"(schema version 99; this one knows up to {SCHEMA_VERSION})")


def test_other_sqlite_database_is_refused(tmp_path):
    """An SQLite file that is not ours is refused and left alone."""
    path = tmp_path / "other.db"
    query(path, "CREATE TABLE t (x)")
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value) == (f"cannot open the database {path}: it is not a "
                                f"chatservice database (it holds other data)")
    assert query(path, "PRAGMA user_version") == [(0,)]


# -- history, topics, offline messages, accounts --------------------------------

@pytest_twisted.inlineCallbacks
def test_history_is_per_room_oldest_first_with_limit_and_paging(stores, tmp_path):
    """
    C{history} returns a room's last N lines oldest first, with their times
    and kinds; C{before_id} pages further back; rooms do not mix.
    """
    store, _ = stores(tmp_path / "chat.db")
    kinds = ["say", "act", "join", "leave", "quit", "topic"]
    for i in range(30):
        store.record_line("lobby", 100.0 + i, kinds[i % 6], "alice", f"line {i}")
        store.record_line("games", 200.0 + i, "say", "bob", f"games {i}")
    last = yield wait(store.history("lobby", 5))
    assert [line.text for line in last] == [f"line {i}" for i in range(25, 30)]
    assert [line.when for line in last] == [125.0, 126.0, 127.0, 128.0, 129.0]
    assert [line.kind for line in last] == ["act", "join", "leave", "quit", "topic"]
    assert all(isinstance(line, HistoryLine) for line in last)
    assert [line.id for line in last] == sorted(line.id for line in last)
    before = yield wait(store.history("lobby", 10, before_id=last[0].id))
    assert [line.text for line in before] == [f"line {i}" for i in range(15, 25)]
    assert len((yield wait(store.history("lobby", 100)))) == 30
    assert (yield wait(store.history("lobby", 0))) == []
    assert (yield wait(store.history("nowhere", 5))) == []
    games = yield wait(store.history("games", 2))
    assert [line.text for line in games] == ["games 28", "games 29"]


@pytest_twisted.inlineCallbacks
def test_a_read_sees_every_write_queued_before_it(stores, tmp_path):
    """
    Reads go through the same queue as writes: a read right after a write,
    with no flush, sees it, and is answered at once rather than after the
    batch window.
    """
    store, _ = stores(tmp_path / "chat.db", batch_interval=5)
    yield wait(store.flush())
    started = time.monotonic()
    store.record_line("lobby", 1.0, "say", "alice", "just now")
    store.queue_offline("bob", "alice", "hi bob", 2.0)
    lines = yield wait(store.history("lobby"))
    messages = yield wait(store.take_offline("bob"))
    assert [line.text for line in lines] == ["just now"]
    assert [m.text for m in messages] == ["hi bob"]
    assert time.monotonic() - started < 2


@pytest_twisted.inlineCallbacks
def test_writes_in_one_window_are_one_transaction(stores, tmp_path):
    """Many lines recorded within one batch window are committed together."""
    store, _ = stores(tmp_path / "chat.db", batch_interval=0.2)
    yield wait(store.flush())
    before = store.batches
    for i in range(5000):
        store.record_line("lobby", float(i), "say", "alice", str(i))
    yield wait(store.flush())
    assert store.lines_written == 5000
    assert store.batches - before <= 2


@pytest_twisted.inlineCallbacks
def test_prune_keeps_the_newest_lines_of_each_room(stores, tmp_path):
    """
    C{prune} keeps the newest C{history_limit} lines of every room, even
    when it works in several steps; a reopen with a lower limit prunes at
    start-up.
    """
    store, _ = stores(tmp_path / "chat.db", history_limit=10, batch_interval=0.01,
                      prune_chunk=3, prune_step_seconds=0)
    for i in range(25):
        store.record_line("lobby", float(i), "say", "alice", f"lobby {i}")
    for i in range(5):
        store.record_line("quiet", float(i), "say", "bob", f"quiet {i}")
    deleted = yield wait(store.prune())
    assert deleted == 15
    lobby = yield wait(store.history("lobby", 100))
    assert [line.text for line in lobby] == [f"lobby {i}" for i in range(15, 25)]
    assert len((yield wait(store.history("quiet", 100)))) == 5
    assert (yield wait(store.prune())) == 0

    store, _ = yield reopen(stores, store, history_limit=4, batch_interval=0.01)
    yield wait(store.flush())
    for _ in range(50):  # the start-up prune runs in the background
        if query(store.path, "SELECT count(*) FROM history") == [(8,)]:
            break
        yield wait(store.flush())
    lobby = yield wait(store.history("lobby", 100))
    assert [line.text for line in lobby] == [f"lobby {i}" for i in range(21, 25)]
    quiet = yield wait(store.history("quiet", 100))
    assert [line.text for line in quiet] == [f"quiet {i}" for i in range(1, 5)]


@pytest_twisted.inlineCallbacks
def test_periodic_prune_is_scheduled_and_cancelled(stores, tmp_path):
    """Opening schedules the background prune; closing cancels it."""
    from twisted.internet import reactor

    store, _ = stores(tmp_path / "chat.db", prune_interval=60)
    call = store._prune_call
    assert call is not None and call.active()
    assert 59 < call.getTime() - reactor.seconds() <= 60
    yield wait(store.close())
    assert not call.active()


@pytest_twisted.inlineCallbacks
def test_take_offline_returns_and_deletes(stores, tmp_path):
    """
    C{take_offline} hands over a recipient's messages oldest first, with
    time and action flag, and deletes them; others' messages stay.  Beyond
    C{max_offline} new messages are dropped.
    """
    store, _ = stores(tmp_path / "chat.db", max_offline=3)
    kept = [store.queue_offline("alice", "Bob", "one", 10.0),
            store.queue_offline("bob", "Alice", "for bob", 11.0),
            store.queue_offline("alice", "Carol", "waves", 12.0, action=True),
            store.queue_offline("alice", "Bob", "three", 13.0)]
    refused = store.queue_offline("alice", "Bob", "four (over the limit)", 14.0)
    assert refused.called and (yield refused) is False  # at once
    assert store.offline_waiting == {"alice": 3, "bob": 1}
    assert (yield wait(defer.gatherResults(kept))) == [True] * 4
    taken = yield wait(store.take_offline("alice"))
    assert taken == [OfflineMessage(10.0, "Bob", "one", False),
                     OfflineMessage(12.0, "Carol", "waves", True),
                     OfflineMessage(13.0, "Bob", "three", False)]
    assert store.offline_dropped == 1
    assert store.offline_waiting == {"bob": 1}
    assert (yield wait(store.queue_offline("alice", "Bob", "room again", 15.0))) is True
    assert [m.text for m in (yield wait(store.take_offline("alice")))] == ["room again"]
    assert (yield wait(store.take_offline("alice"))) == []
    assert [m.text for m in (yield wait(store.take_offline("bob")))] == ["for bob"]


@pytest_twisted.inlineCallbacks
def test_offline_mailbox_counts_survive_a_restart(stores, tmp_path):
    """The count of waiting messages is read back at open, so the cap holds across restarts."""
    store, _ = stores(tmp_path / "chat.db", max_offline=2)
    assert (yield wait(store.queue_offline("alice", "Bob", "one", 1.0))) is True
    assert (yield wait(store.queue_offline("alice", "Bob", "two", 2.0))) is True
    yield wait(store.close())
    again, _ = stores(tmp_path / "chat.db", max_offline=2)
    assert again.offline_waiting == {"alice": 2}
    assert (yield wait(again.queue_offline("alice", "Bob", "three", 3.0))) is False
    assert [m.text for m in (yield wait(again.take_offline("alice")))] == ["one", "two"]


@pytest_twisted.inlineCallbacks
def test_accounts_create_lookup_password_and_delete(stores, tmp_path):
    """
    Creating an account registers its key (a second time fails with
    L{AccountExists}); passwords can be changed; deleting forgets it.
    """
    store, _ = stores(tmp_path / "chat.db")
    assert not store.is_registered("alice")
    account = yield wait(store.create_account("alice", "Alice", HASH, 5.0))
    assert account == Account("alice", "Alice", HASH, 5.0, None)
    assert store.is_registered("alice")
    with pytest.raises(AccountExists):
        yield wait(store.create_account("alice", "ALICE", "$scrypt$other", 6.0))
    assert (yield wait(store.get_account("alice"))).password_hash == HASH
    assert (yield wait(store.get_account("nobody"))) is None
    assert (yield wait(store.set_password("alice", "$scrypt$new"))) is True
    assert (yield wait(store.get_account("alice"))).password_hash == "$scrypt$new"
    assert (yield wait(store.set_password("nobody", "$scrypt$new"))) is False
    store.queue_offline("alice", "Bob", "hi", 7.0)
    assert (yield wait(store.delete_account("alice"))) is True
    assert not store.is_registered("alice")
    assert (yield wait(store.delete_account("alice"))) is False
    assert query(store.path, "SELECT count(*) FROM offline") == [(0,)]


@pytest_twisted.inlineCallbacks
def test_admin_lookups(stores, tmp_path):
    """
    The admin shell's look-ups: accounts by pattern, one account's
    details, history search, rooms with history, counts.  An account's
    repr never shows its hash.
    """
    store, _ = stores(tmp_path / "chat.db")
    for key in ("alice", "alicia", "bob"):
        yield wait(store.create_account(key, key.title(), HASH, 1.0))
    store.record_line("lobby", 1.0, "say", "Alice", "hello 100% of you")
    store.record_line("lobby", 2.0, "say", "Bob", "hello alice")
    store.record_line("games", 3.0, "act", "alice", "deals")
    store.queue_offline("bob", "Alice", "psst", 4.0)
    yield wait(store.flush())

    found = yield wait(store.accounts("ali"))
    assert [a.key for a in found] == ["alice", "alicia"]
    assert len((yield wait(store.accounts()))) == 3
    assert (yield wait(store.accounts("%"))) == []  # LIKE wildcards are literal
    assert HASH not in repr(found[0]) and "scrypt" in repr(found[0])
    info = yield wait(store.account_info("alice"))
    assert (info.account.key, info.offline_pending, info.lines_said) == ("alice", 0, 2)
    assert (yield wait(store.account_info("bob"))).offline_pending == 1
    assert (yield wait(store.account_info("nobody"))) is None
    hits = yield wait(store.search_history("100%"))
    assert [(h.room_key, h.text) for h in hits] == [("lobby", "hello 100% of you")]
    hits = yield wait(store.search_history(sender="ALICE"))
    assert [h.room_key for h in hits] == ["lobby", "games"]
    hits = yield wait(store.search_history("hello", room_key="lobby", limit=1))
    assert [h.sender for h in hits] == ["Bob"]
    rooms = yield wait(store.history_rooms())
    assert [(r.room_key, r.lines, r.first, r.last) for r in rooms] == [
        ("games", 1, 3.0, 3.0), ("lobby", 2, 1.0, 2.0)]
    stats = yield wait(store.stats())
    assert stats["accounts"] == 3 and stats["history_lines"] == 3
    assert stats["rooms_with_history"] == 2 and stats["offline_messages"] == 1
    assert stats["lines_written"] == 3 and stats["file_bytes"] > 0


@pytest_twisted.inlineCallbacks
def test_a_malformed_line_does_not_cost_the_others(stores, tmp_path):
    """A line SQLite cannot store (a lone surrogate) is dropped alone."""
    store, _ = stores(tmp_path / "chat.db")
    store.record_line("lobby", 1.0, "say", "alice", "before")
    store.record_line("lobby", 2.0, "say", "alice", "bad \udc80")
    store.record_line("lobby", 3.0, "say", "alice", "after")
    lines = yield wait(store.history("lobby"))
    assert [line.text for line in lines] == ["before", "after"]


def limit_pages(conn, extra):
    """Let the database grow by C{extra} pages at most (SQLite then fails as on a full disk)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return conn.execute(f"PRAGMA max_page_count = {pages + extra}").fetchone()[0]


def logged(store):
    """Send C{store}'s log events to a list, and return it."""
    events = []
    store.log = Logger(observer=events.append)
    return events


@pytest_twisted.inlineCallbacks
def test_lines_a_batch_cannot_commit_are_counted_and_the_outage_logged_once(stores, tmp_path):
    """
    When transactions cannot be committed (the database cannot grow: SQLite
    says "database or disk is full"), the history lines in them are counted
    in C{writes_dropped}, the reads in the same batches are still answered,
    the log says so once when it starts (naming the cause), and once, with
    what was lost, when a batch commits again.
    """
    store, _ = stores(tmp_path / "chat.db", batch_interval=0.05)
    events = logged(store)
    yield wait(store.flush())
    yield wait(store._submit(limit_pages, (0,), "limit the size"))
    for _ in range(3):
        for i in range(500):
            store.record_line("lobby", float(i), "say", "alice", "x" * 200)
        assert (yield wait(store.history("lobby"))) == []  # answered, without the lost lines
    assert store.writes_dropped == 1500
    assert store.lines_written == 0
    texts = [formatEvent(event) for event in events]
    assert len(texts) == 1, texts
    assert texts[0].startswith(
        f"the database cannot write to {tmp_path}: the database is full, although the "
        f"disk holding {tmp_path} has "), texts
    assert texts[0].endswith("(SQLite: database or disk is full)")
    assert events[0]["log_level"] == LogLevel.error

    yield wait(store._submit(limit_pages, (100000,), "lift the limit"))
    store.record_line("lobby", 1.0, "say", "alice", "room again")
    assert [line.text for line in (yield wait(store.history("lobby")))] == ["room again"]
    texts = [formatEvent(event) for event in events]
    assert len(texts) == 2, texts
    assert re.fullmatch(
        rf"the database could not write to {re.escape(str(tmp_path))} for \d+ s: the "
        r"database is full; 1,500 history lines and 0 other changes were lost",
        texts[1]), texts[1]
    assert store.writes_dropped == 1500 and store.lines_written == 1


@pytest_twisted.inlineCallbacks
def test_changes_a_batch_cannot_commit_fail_and_are_counted(stores, tmp_path):
    """
    Changes that cannot be stored either (an offline message, a new account,
    a topic too big for the pages left) are counted in C{writes_dropped}
    and say so: the account fails with L{StoreError}, the offline message
    fires with C{False} and leaves the mailbox count as it was; a read in
    the same batch is still answered.
    """
    store, _ = stores(tmp_path / "chat.db")
    events = logged(store)
    yield wait(store.create_account("alice", "Alice", HASH, 1.0))
    yield wait(store._submit(limit_pages, (0,), "limit the size"))
    big = "m" * 50000  # needs overflow pages: cannot fit
    for i in range(10):
        store.record_line("lobby", float(i), "say", "alice", "x" * 200)
    store.set_topic("lobby", big, "Alice", 2.0)
    offline = store.queue_offline("alice", "Bob", big, 3.0)
    account = store.create_account("carol", "Carol", big, 4.0)
    found = yield wait(store.get_account("alice"))
    assert found.name == "Alice"
    assert (yield wait(offline)) is False
    with pytest.raises(StoreError):
        yield wait(account)
    assert store.offline_waiting == {}
    assert not store.is_registered("carol")
    assert store.writes_dropped == 13
    assert len(events) == 1, [formatEvent(event) for event in events]
    yield wait(store._submit(limit_pages, (100000,), "lift the limit"))
    assert (yield wait(store.queue_offline("alice", "Bob", "small", 5.0))) is True
    assert store.offline_waiting == {"alice": 1}
    store.record_line("lobby", 1.0, "say", "alice", "room again")
    yield wait(store.flush())
    assert len(events) == 2
    assert formatEvent(events[1]).endswith(
        "10 history lines and 3 other changes were lost")
    assert query(store.path, "SELECT text FROM offline") == [("small",)]
    assert query(store.path, "SELECT count(*) FROM topics") == [(0,)]


def test_a_full_disk_is_named_as_the_cause(tmp_path, monkeypatch):
    """
    SQLite says "disk I/O error" or "database or disk is full" for a full
    disk: the free space decides what the operator is told.
    """
    class Stat:
        f_frsize, f_files, f_favail = 4096, 1000, 500

        def __init__(self, blocks):
            self.f_bavail = blocks

    error = sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(os, "statvfs", lambda path: Stat(3))
    assert disk.disk_trouble("/srv/chat", error) == (
        "the disk is full", "the disk holding /srv/chat is full (12 KiB free)")
    monkeypatch.setattr(os, "statvfs", lambda path: Stat(10 * 256))
    assert disk.disk_trouble("/srv/chat", error) == (
        "the disk failed", "the disk holding /srv/chat failed to read or write, with 10 MiB free")
    assert disk.disk_trouble("/srv/chat", sqlite3.OperationalError(
        "database or disk is full"))[0] == "the database is full"
    assert disk.disk_trouble("/srv/chat", sqlite3.OperationalError(
        "attempt to write a readonly database"))[0] == "the database is read-only"


# -- stopping -------------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_clean_close_keeps_everything_queued(stores, tmp_path):
    """
    C{close} commits everything queued before it, even within the batch
    window; afterwards writes are dropped and reads fail clearly.
    """
    store, _ = stores(tmp_path / "chat.db", batch_interval=5)
    for i in range(2000):
        store.record_line("lobby", float(i), "say", "alice", str(i))
    store.set_topic("lobby", "kept", "alice", 1.0)
    store.queue_offline("bob", "alice", "kept too", 2.0)
    started = time.monotonic()
    yield wait(store.close())
    assert time.monotonic() - started < 2  # close does not wait for the window
    store.record_line("lobby", 1.0, "say", "alice", "too late")
    assert store.writes_dropped == 1
    with pytest.raises(StoreError):
        yield wait(store.history("lobby"))
    yield wait(store.close())  # closing twice is harmless
    assert query(store.path, "SELECT count(*) FROM history") == [(2000,)]
    assert query(store.path, "SELECT topic FROM topics") == [("kept",)]
    assert query(store.path, "SELECT text FROM offline") == [("kept too",)]


@pytest_twisted.inlineCallbacks
def test_close_fires_even_if_the_writer_died(stores, tmp_path):
    """
    If the writer thread dies, waiting reads fail with L{StoreError} and
    C{close} still fires, so a server can always stop.
    """
    store, _ = stores(tmp_path / "chat.db")
    yield wait(store.flush())

    def broken(conn, batch):
        raise RuntimeError("simulated writer crash")

    store._commit = broken
    with pytest.raises(StoreError) as error:
        yield wait(store.get_account("alice"))
    assert "simulated writer crash" in str(error.value)
    yield wait(store.close())


def test_backlog_is_bounded(tmp_path):
    """
    Beyond C{max_backlog} waiting writes, new lines are dropped and
    counted instead of growing memory; a store not open drops them too.
    """
    store = ChatStore(str(tmp_path / "chat.db"), None, max_backlog=10)
    store.record_line("lobby", 1.0, "say", "alice", "not open yet")
    assert store.writes_dropped == 1
    store._accepting = True  # as if open, with the writer not draining
    for i in range(15):
        store.record_line("lobby", 1.0, "say", "alice", str(i))
    assert len(store._queue) == 10 and store.writes_dropped == 6


def test_the_backlog_warning_counts_refused_writes_only(tmp_path):
    """
    The warning that the writer is behind comes at the first refused write
    (and every 10,000th after it), however many writes an outage lost
    before: those are counted in writes_dropped too, and logged apart.
    """
    store = ChatStore(str(tmp_path / "chat.db"), None, max_backlog=1)
    events = logged(store)
    store._accepting = True  # as if open, with the writer not draining
    store.writes_dropped = 3016  # lost in failed batches
    store.record_line("lobby", 1.0, "say", "alice", "queued")
    store.record_line("lobby", 1.0, "say", "alice", "refused")
    store.record_line("lobby", 1.0, "say", "alice", "refused too")
    assert store.writes_dropped == 3018
    assert [formatEvent(event) for event in events] == [
        "the database writer is 1 writes behind; 3017 writes dropped so far"]


def test_record_line_is_cheap(tmp_path):
    """
    Recording a line is an append: 200,000 calls take well under a second
    (a sanity bound; the real figure is in the millions per second).
    """
    store = ChatStore(str(tmp_path / "chat.db"), None, max_backlog=0)
    store._accepting = True
    record = store.record_line
    started = time.perf_counter()
    for i in range(200000):
        record("lobby", 1.0, "say", "alice", "hello")
    assert time.perf_counter() - started < 2
    assert len(store._queue) == 200000


# -- unusable databases -----------------------------------------------------------

@pytest.fixture
def read_only():
    """
    Return a function that makes a file or directory read-only for this
    process, even as root (with C{chattr +i}), or skips the test; undone
    at the end.
    """
    undo = []

    def make(path):
        path = str(path)
        if os.geteuid() != 0:
            mode = os.stat(path).st_mode
            os.chmod(path, 0o555 if os.path.isdir(path) else 0o444)
            undo.append(lambda: os.chmod(path, mode))
        else:
            try:
                done = subprocess.run(["chattr", "+i", path], capture_output=True)
            except FileNotFoundError:
                pytest.skip("running as root without chattr: cannot make a file read-only")
            if done.returncode:
                pytest.skip(f"chattr +i failed here: {done.stderr.decode().strip()}")
            undo.append(lambda: subprocess.run(["chattr", "-i", path], check=True))
        # Make sure it really is read-only, or this test proves nothing.
        probe = os.path.join(path, "probe") if os.path.isdir(path) else None
        try:
            if probe:
                open(probe, "w").close()
                os.remove(probe)
            else:
                open(path, "r+b").close()
        except OSError:
            return
        pytest.skip("cannot make a path read-only here")

    yield make
    for action in reversed(undo):
        action()


@pytest_twisted.inlineCallbacks
def test_read_only_database_file(stores, tmp_path, read_only):
    """A read-only database file is a clear start-up error, not a crash later."""
    path = tmp_path / "chat.db"
    store, _ = stores(path)
    yield wait(store.close())
    read_only(path)
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value) == (f"cannot open the database {path}: it is read-only "
                                f"(attempt to write a readonly database)")


@pytest_twisted.inlineCallbacks
def test_read_only_directory(stores, tmp_path, read_only):
    """
    A database in a read-only directory (where SQLite cannot create its
    -wal file) is a clear start-up error naming the directory.
    """
    directory = tmp_path / "data"
    store, _ = stores(directory / "chat.db")
    yield wait(store.close())
    read_only(directory)
    with pytest.raises(StoreError) as error:
        ChatStore(str(directory / "chat.db"), None).open()
    message = str(error.value)
    assert message.startswith(f"cannot open the database {directory / 'chat.db'}: "
                              f"its directory {directory} is read-only")
    with pytest.raises(StoreError) as error:
        ChatStore(str(directory / "sub" / "chat.db"), None).open()
    assert str(error.value).startswith(f"cannot create the directory {directory / 'sub'}")


def test_unusable_paths(tmp_path):
    """
    A directory given as the database, or a path under a regular file,
    is a clear start-up error (these work the same as root).
    """
    with pytest.raises(StoreError) as error:
        ChatStore(str(tmp_path), None).open()
    assert str(error.value) == f"cannot open the database {tmp_path}: it is a directory"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError) as error:
        ChatStore(str(tmp_path / "file" / "chat.db"), None).open()
    assert str(error.value) == (f"cannot create the directory {tmp_path / 'file'} for the "
                                f"database {tmp_path / 'file' / 'chat.db'}: a file of that name is in the way")
    with pytest.raises(StoreError) as error:
        ChatStore(str(tmp_path / "file" / "deeper" / "chat.db"), None).open()
    assert str(error.value).endswith(": Not a directory")


def test_garbage_file_is_refused(tmp_path):
    """A file of garbage is refused with a clear message and left untouched."""
    path = tmp_path / "chat.db"
    garbage = os.urandom(16384)
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value) == (f"cannot open the database {path}: it is not a chatservice "
                                f"database or is corrupt (file is not a database)")
    assert path.read_bytes() == garbage


@pytest_twisted.inlineCallbacks
def test_damaged_database_is_refused(stores, tmp_path):
    """A chatservice database with damaged pages is refused at start-up."""
    path = tmp_path / "chat.db"
    store, _ = stores(path)
    for i in range(3000):
        store.record_line("lobby", float(i), "say", "alice", f"line {i} " + "x" * 50)
    yield wait(store.close())
    data = bytearray(path.read_bytes())
    assert len(data) > 40 * 4096
    # A history page near the end: only the start-up quick_check reads it.
    page = (len(data) // 4096 - 3) * 4096
    data[page:page + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as error:
        ChatStore(str(path), None).open()
    assert str(error.value).startswith(f"cannot open the database {path}: it is ")
    assert "corrupt" in str(error.value)


# -- SIGKILL ------------------------------------------------------------------------

CHILD = """
import sys, time
from twisted.internet import reactor, task
from chatservice.persistence.store import ChatStore

store = ChatStore(sys.argv[1], reactor, batch_interval=float(sys.argv[2]))
store.open()
count = [0]

def burst():
    for _ in range(20):
        store.record_line("lobby", time.time(), "say", "alice", str(count[0]))
        count[0] += 1

task.LoopingCall(burst).start(0.002)
reactor.callWhenRunning(lambda: print("ready", flush=True))
reactor.run()
"""


@pytest_twisted.inlineCallbacks
def test_sigkill_loses_at_most_the_last_batch_window(stores, tmp_path):
    """
    A server killed with SIGKILL while recording about 10,000 lines per
    second leaves a consistent database that holds every line recorded
    more than the batch window (plus a margin) before the kill, with no
    gaps.
    """
    from twisted.internet import reactor, task

    window, margin = 0.1, 0.2
    path = tmp_path / "chat.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, str(script), str(path), str(window)],
                             stdout=subprocess.PIPE, env=env)
    try:
        ready, _, _ = select.select([child.stdout], [], [], TIMEOUT)
        assert ready and child.stdout.readline() == b"ready\n"
        yield task.deferLater(reactor, 1.0, lambda: None)
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert os.path.getsize(str(path) + "-wal") > 0  # recovery from the WAL is exercised

    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    rows = query(path, "SELECT at, text FROM history ORDER BY id")
    assert len(rows) > 1000
    assert [int(text) for _, text in rows] == list(range(len(rows)))  # no gaps
    newest = rows[-1][0]
    assert killed_at - newest <= window + margin, (
        f"lines recorded up to {killed_at - newest:.3f}s before the kill are missing")
    store, _ = stores(path)  # and the server starts again on it
    lines = yield wait(store.history("lobby", 1))
    assert lines[0].text == rows[-1][1]
