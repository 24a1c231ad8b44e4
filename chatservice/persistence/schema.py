"""
The database's schema: its version, the steps that bring an older file up
to date, and the kinds of history line.  Versioned with C{PRAGMA
user_version}; C{PRAGMA application_id} marks the file as ours.
L{prepare} checks a database and applies the missing steps at start-up.

Tables
======

L{MIGRATIONS} lists the steps; L{prepare} (run by C{ChatStore.check})
applies the missing ones in order, each in its own transaction.

  - C{meta(name, value)}: C{created} and C{opened_at} times.
  - C{accounts(key, name, password_hash, created, last_seen)}: C{key} is the
    name key (L{chatservice.core.text.name_key}); C{password_hash} is whatever
    the caller stored (a slow salted hash from L{chatservice.passwords});
    C{last_seen} came with version 2.
  - C{topics(room_key, topic, set_by, set_at)}: a cleared topic has no row.
  - C{history(id, room_key, at, kind, sender, text)}, indexed by
    C{(room_key, id)}; C{kind} is one of L{KINDS}.
  - C{offline(id, recipient_key, at, sender, text, action)}.
  - C{rooms(key, name, founder_key, founder, registered_at, flags, password,
    member_limit)}, C{room_operators(room_key, account_key)} and
    C{room_bans(room_key, position, ban_key, mask)}: the registered rooms
    (version 3), each written whole at each change (see
    L{chatservice.persistence.rooms}).
  - C{private_history(id, owner_key, peer_key, at, kind, sender, recipient,
    text, outgoing)} (version 4): private messages, kept for registered
    accounts only, one row per account that took part (C{owner_key}); the
    other side is C{peer_key} (its name key) and C{sender} or C{recipient}
    (its name as shown, by C{outgoing}); C{kind} is C{say} or C{act}.  An
    account's rows are deleted with it.  Indexed by C{(owner_key, peer_key,
    id)} for a conversation and C{(owner_key, id)} for the per-account cap.
"""

import os
import sqlite3
import time

from twisted.logger import Logger

from . import queries
from .disk import disk_trouble
from .records import Loaded, StoreError, Topic

log = Logger()

#: The schema version this code writes (C{PRAGMA user_version}).
SCHEMA_VERSION = 4
#: C{PRAGMA application_id} of a chatservice database ("Chat").
APPLICATION_ID = 0x43686174
#: The kinds of history line the chat records.
KINDS = ("say", "act", "join", "leave", "quit", "topic")
#: The kinds of private history line.
PRIVATE_KINDS = ("say", "act")

#: (description, statements) for each schema version, oldest first: version
#: N is reached by running MIGRATIONS[N - 1] on a version N - 1 database.
MIGRATIONS = [
    ("accounts, topics, room history and offline messages", [
        "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value)",
        "CREATE TABLE accounts (key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
        " password_hash TEXT NOT NULL, created REAL NOT NULL)",
        "CREATE TABLE topics (room_key TEXT PRIMARY KEY NOT NULL, topic TEXT NOT NULL,"
        " set_by TEXT NOT NULL, set_at REAL NOT NULL)",
        "CREATE TABLE history (id INTEGER PRIMARY KEY, room_key TEXT NOT NULL,"
        " at REAL NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL)",
        "CREATE INDEX history_by_room ON history (room_key, id)",
        "CREATE TABLE offline (id INTEGER PRIMARY KEY, recipient_key TEXT NOT NULL,"
        " at REAL NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL,"
        " action INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX offline_by_recipient ON offline (recipient_key, id)",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ]),
    ("accounts remember when they last logged in", [
        "ALTER TABLE accounts ADD COLUMN last_seen REAL",
    ]),
    ("registered rooms, with their operators and bans", [
        "CREATE TABLE rooms (key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
        " founder_key TEXT NOT NULL, founder TEXT NOT NULL, registered_at REAL NOT NULL,"
        " flags TEXT NOT NULL DEFAULT '', password TEXT NOT NULL DEFAULT '',"
        " member_limit INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE room_operators (room_key TEXT NOT NULL, account_key TEXT NOT NULL,"
        " PRIMARY KEY (room_key, account_key))",
        "CREATE TABLE room_bans (room_key TEXT NOT NULL, position INTEGER NOT NULL,"
        " ban_key TEXT NOT NULL, mask TEXT NOT NULL, PRIMARY KEY (room_key, position))",
    ]),
    ("the history of private conversations, for registered accounts", [
        "CREATE TABLE private_history (id INTEGER PRIMARY KEY, owner_key TEXT NOT NULL,"
        " peer_key TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,"
        " sender TEXT NOT NULL, recipient TEXT NOT NULL, text TEXT NOT NULL,"
        " outgoing INTEGER NOT NULL)",
        "CREATE INDEX private_by_peer ON private_history (owner_key, peer_key, id)",
        "CREATE INDEX private_by_owner ON private_history (owner_key, id)",
    ]),
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def prepare(conn: sqlite3.Connection, path: str, quick_check: bool = True) -> Loaded:
    """
    Check the database open on C{conn} (at C{path}) and bring its schema up
    to date: refuse a file that is not ours, from a newer version, corrupt
    (with C{quick_check}) or unable to use write-ahead logging; run the
    missing migrations, each in its own transaction; write once (so that a
    read-only database fails here); and return what the chat reads at
    start-up.  Raise L{StoreError} with one sentence for the operator.
    """
    # Reading the schema reads the header: garbage fails here.
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    application = conn.execute("PRAGMA application_id").fetchone()[0]
    if application != APPLICATION_ID and (application or version or tables):
        raise StoreError(f"cannot open the database {path}: it is not a "
                         f"chatservice database (it holds other data)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"cannot open the database {path}: it was written by a newer "
            f"chatservice (schema version {version}; this one knows up to "
            f"{SCHEMA_VERSION})")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(
            f"cannot open the database {path}: SQLite cannot use write-ahead "
            f"logging there (the journal mode stays {mode!r}); put it on a local "
            f"file system")
    conn.execute("PRAGMA synchronous = NORMAL")
    if quick_check:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(
                f"cannot open the database {path}: it is corrupt "
                f"(quick_check: {'; '.join(problems)})")
    for number in range(version + 1, SCHEMA_VERSION + 1):
        description, statements = MIGRATIONS[number - 1]
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                conn.execute(statement)
            if number == 1:
                conn.execute("INSERT INTO meta VALUES ('created', ?)", (time.time(),))
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise explain(e, path, f"upgrade the database {path} to schema "
                              f"version {number} ({description})") from None
        if version:
            log.info("database {path} upgraded to schema version {number}: "
                          "{description}", path=path, number=number,
                          description=description)
    # A write at every start: a read-only database fails here, not later.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('opened_at', ?)", (time.time(),))
    conn.execute("COMMIT")
    topics = {key: Topic(topic, set_by, set_at) for key, topic, set_by, set_at
              in conn.execute("SELECT room_key, topic, set_by, set_at FROM topics")}
    registered = {row[0] for row in conn.execute("SELECT key FROM accounts")}
    waiting = dict(conn.execute(
        "SELECT recipient_key, count(*) FROM offline GROUP BY recipient_key"))
    return Loaded(topics, registered, waiting, queries.load_rooms(conn))

def explain(error: sqlite3.Error, path: str, action: str = "") -> StoreError:
    """
    Turn an SQLite error at start-up into one clear sentence: what
    failed (C{action}, by default opening the database), why, and
    SQLite's own words.
    """
    directory = os.path.dirname(path)
    message = str(error)
    lowered = message.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        reason = "it is not a chatservice database or is corrupt"
    elif "readonly" in lowered or "read-only" in lowered:
        if os.path.exists(path) and not os.access(path, os.W_OK):
            reason = "it is read-only"
        elif not os.access(directory, os.W_OK | os.X_OK):
            reason = (f"its directory {directory} is read-only, and SQLite "
                      f"needs to create the -wal and -shm files there")
        else:
            reason = "it is read-only"
    elif "unable to open" in lowered:
        if os.path.isdir(path):
            reason = "it is a directory"
        elif not os.access(directory, os.W_OK | os.X_OK):
            reason = (f"its directory {directory} is read-only, and SQLite "
                      f"needs to create the -wal and -shm files there")
        elif not os.access(path, os.R_OK | os.W_OK):
            reason = "permission denied"
        else:
            reason = "SQLite cannot open it"
    elif "locked" in lowered or "busy" in lowered:
        reason = ("another program holds a lock on it (is another server "
                  "using it?)")
    elif "full" in lowered or "disk i/o" in lowered:
        reason = disk_trouble(directory, error)[1]
    else:
        reason = "SQLite failed"
    action = action or f"open the database {path}"
    return StoreError(f"cannot {action}: {reason} ({message})")
