"""
The SQL the store runs: each function takes a connection and runs on the
store's writer thread (changes, and reads that must see every write queued
before them) or on its reader thread (the admin look-ups and long
C{/history} reads, on committed data).  Nothing here touches the reactor.
"""

import sqlite3
from typing import Any, Dict, List, Optional, Tuple

from ..core.registry import RoomRecord

from .records import (
    Account,
    AccountExists,
    AccountInfo,
    FoundLine,
    HistoryLine,
    OfflineMessage,
    PrivateLine,
    PrivateTarget,
    RoomHistory,
)

INSERT_LINE = "INSERT INTO history (room_key, at, kind, sender, text) VALUES (?, ?, ?, ?, ?)"
ACCOUNT_COLUMNS = "key, name, password_hash, created, last_seen"


def nothing(conn: sqlite3.Connection) -> None:
    return None


def account(row) -> Optional[Account]:
    return Account(*row) if row is not None else None


def get_account(conn: sqlite3.Connection, key: str) -> Optional[Account]:
    return account(conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE key = ?",
                                 (key,)).fetchone())


def create_account(conn: sqlite3.Connection, key: str, name: str, password_hash: str,
                    when: float) -> Account:
    try:
        conn.execute("INSERT INTO accounts (key, name, password_hash, created)"
                     " VALUES (?, ?, ?, ?)", (key, name, password_hash, when))
    except sqlite3.IntegrityError:
        raise AccountExists(f"The name {name!r} is already registered.") from None
    return Account(key, name, password_hash, when, None)


def set_password(conn: sqlite3.Connection, key: str, password_hash: str) -> bool:
    return conn.execute("UPDATE accounts SET password_hash = ? WHERE key = ?",
                        (password_hash, key)).rowcount == 1


def delete_account(conn: sqlite3.Connection, key: str) -> bool:
    conn.execute("DELETE FROM offline WHERE recipient_key = ?", (key,))
    conn.execute("DELETE FROM private_history WHERE owner_key = ?", (key,))
    return conn.execute("DELETE FROM accounts WHERE key = ?", (key,)).rowcount == 1


def record_login(conn: sqlite3.Connection, key: str, when: float) -> None:
    conn.execute("UPDATE accounts SET last_seen = ? WHERE key = ?", (when, key))


def set_topic(conn: sqlite3.Connection, room_key: str, topic: str, set_by: str,
               when: float) -> None:
    if topic:
        conn.execute("INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?)",
                     (room_key, topic, set_by, when))
    else:
        conn.execute("DELETE FROM topics WHERE room_key = ?", (room_key,))


def history(conn: sqlite3.Connection, room_key: str, limit: int,
             before_id: Optional[int]) -> List[HistoryLine]:
    if before_id is None:
        rows = conn.execute("SELECT id, at, kind, sender, text FROM history"
                            " WHERE room_key = ? ORDER BY id DESC LIMIT ?",
                            (room_key, limit)).fetchall()
    else:
        rows = conn.execute("SELECT id, at, kind, sender, text FROM history"
                            " WHERE room_key = ? AND id < ? ORDER BY id DESC LIMIT ?",
                            (room_key, before_id, limit)).fetchall()
    rows.reverse()
    return [HistoryLine(*row) for row in rows]


def last_line_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT max(id) FROM history").fetchone()[0] or 0


def queue_offline(conn: sqlite3.Connection, recipient_key: str, sender: str,
                   text: str, when: float, action: bool) -> None:
    # The cap was checked against ChatStore.offline_waiting when queued.
    conn.execute("INSERT INTO offline (recipient_key, at, sender, text, action)"
                 " VALUES (?, ?, ?, ?, ?)", (recipient_key, when, sender, text, int(action)))


def take_offline(conn: sqlite3.Connection, recipient_key: str) -> List[OfflineMessage]:
    rows = conn.execute("SELECT id, at, sender, text, action FROM offline"
                        " WHERE recipient_key = ? ORDER BY id", (recipient_key,)).fetchall()
    if rows:
        conn.execute("DELETE FROM offline WHERE recipient_key = ? AND id <= ?",
                     (recipient_key, rows[-1][0]))
    return [OfflineMessage(at, sender, text, bool(action))
            for _, at, sender, text, action in rows]


def record_private(conn: sqlite3.Connection, owner_key: str, peer_key: str, when: float,
                   kind: str, sender: str, recipient: str, text: str,
                   outgoing: bool) -> None:
    conn.execute("INSERT INTO private_history (owner_key, peer_key, at, kind, sender,"
                 " recipient, text, outgoing) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (owner_key, peer_key, when, kind, sender, recipient, text, int(outgoing)))


PRIVATE_COLUMNS = "id, at, kind, sender, recipient, text, outgoing"


def private_history(conn: sqlite3.Connection, owner_key: str, peer_key: str,
                    limit: int) -> List[PrivateLine]:
    """The last C{limit} lines of C{owner_key}'s conversation with C{peer_key}, oldest first."""
    rows = conn.execute(f"SELECT {PRIVATE_COLUMNS} FROM private_history"
                        " WHERE owner_key = ? AND peer_key = ? ORDER BY id DESC LIMIT ?",
                        (owner_key, peer_key, limit)).fetchall()
    rows.reverse()
    return [PrivateLine(i, at, kind, sender, recipient, text, bool(outgoing))
            for i, at, kind, sender, recipient, text, outgoing in rows]


def private_targets(conn: sqlite3.Connection, owner_key: str, start: float, end: float,
                    limit: int) -> List[PrivateTarget]:
    """
    The people C{owner_key} exchanged private lines with from C{start} to
    C{end} (seconds, inclusive), each with the time of the last such line
    and their name as shown on it, earliest first, at most C{limit}.
    """
    # SQLite takes the bare columns of an aggregate query from the row max() picked.
    rows = conn.execute(
        "SELECT CASE WHEN outgoing THEN recipient ELSE sender END, max(at)"
        " FROM private_history WHERE owner_key = ? AND at >= ? AND at <= ?"
        " GROUP BY peer_key ORDER BY max(at), peer_key LIMIT ?",
        (owner_key, start, end, limit)).fetchall()
    return [PrivateTarget(peer, at) for peer, at in rows]


def save_room(conn: sqlite3.Connection, record: RoomRecord) -> None:
    conn.execute("INSERT OR REPLACE INTO rooms (key, name, founder_key, founder, registered_at,"
                 " flags, password, member_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (record.key, record.name, record.founder_key, record.founder,
                  record.registered_at, record.flags, record.password, record.limit))
    conn.execute("DELETE FROM room_operators WHERE room_key = ?", (record.key,))
    conn.executemany("INSERT INTO room_operators VALUES (?, ?)",
                     [(record.key, key) for key in record.operators])
    conn.execute("DELETE FROM room_bans WHERE room_key = ?", (record.key,))
    conn.executemany("INSERT INTO room_bans VALUES (?, ?, ?, ?)",
                     [(record.key, i, key, mask) for i, (key, mask) in enumerate(record.bans)])


def drop_room(conn: sqlite3.Connection, room_key: str) -> None:
    for table, column in (("rooms", "key"), ("room_operators", "room_key"),
                          ("room_bans", "room_key")):
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (room_key,))


def load_rooms(conn: sqlite3.Connection) -> List[RoomRecord]:
    operators: Dict[str, List[str]] = {}
    for room_key, account_key in conn.execute(
            "SELECT room_key, account_key FROM room_operators ORDER BY room_key, account_key"):
        operators.setdefault(room_key, []).append(account_key)
    bans: Dict[str, List[Tuple[str, str]]] = {}
    for room_key, ban_key, mask in conn.execute(
            "SELECT room_key, ban_key, mask FROM room_bans ORDER BY room_key, position"):
        bans.setdefault(room_key, []).append((ban_key, mask))
    return [RoomRecord(key, name, founder_key, founder, at, flags, password, limit,
                       tuple(operators.get(key, ())), tuple(bans.get(key, ())))
            for key, name, founder_key, founder, at, flags, password, limit in conn.execute(
                "SELECT key, name, founder_key, founder, registered_at, flags, password,"
                " member_limit FROM rooms ORDER BY key")]


#: The operations that change what is stored (counted as lost when a batch fails).
CHANGES = frozenset({create_account, set_password, delete_account, record_login,
                      set_topic, queue_offline, save_room, drop_room, record_private})


# -- admin look-ups, run on the reader thread ------------------------------

def like(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching strings that contain C{text}."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def accounts(conn: sqlite3.Connection, pattern: Optional[str], limit: int) -> List[Account]:
    if pattern:
        rows = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE key LIKE ?"
                            " ESCAPE '\\' ORDER BY key LIMIT ?", (like(pattern), limit))
    else:
        rows = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY key LIMIT ?",
                            (limit,))
    return [Account(*row) for row in rows]


def account_info(conn: sqlite3.Connection, key: str) -> Optional[AccountInfo]:
    account = get_account(conn, key)
    if account is None:
        return None
    pending = conn.execute("SELECT count(*) FROM offline WHERE recipient_key = ?",
                           (key,)).fetchone()[0]
    said = conn.execute("SELECT count(*) FROM history WHERE sender = ? COLLATE NOCASE"
                        " AND kind IN ('say', 'act')", (account.name,)).fetchone()[0]
    return AccountInfo(account, pending, said)


def search_history(conn: sqlite3.Connection, text: Optional[str], room_key: Optional[str],
                    sender: Optional[str], limit: int,
                    before_id: Optional[int]) -> List[FoundLine]:
    where: List[str] = []
    args: List[Any] = []
    if text:
        where.append("text LIKE ? ESCAPE '\\'")
        args.append(like(text))
    if room_key is not None:
        where.append("room_key = ?")
        args.append(room_key)
    if sender:
        where.append("sender = ? COLLATE NOCASE")
        args.append(sender)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    rows = conn.execute(f"SELECT id, room_key, at, kind, sender, text FROM history {clause}"
                        " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    rows.reverse()
    return [FoundLine(*row) for row in rows]


def history_upto(conn: sqlite3.Connection, room_key: str, limit: int,
                  upto: Optional[int]) -> List[HistoryLine]:
    if upto is None:
        return history(conn, room_key, limit, None)
    return history(conn, room_key, limit, upto + 1)


def history_rooms(conn: sqlite3.Connection) -> List[RoomHistory]:
    return [RoomHistory(*row) for row in conn.execute(
        "SELECT room_key, count(*), min(at), max(at) FROM history"
        " GROUP BY room_key ORDER BY room_key")]


def stats(conn: sqlite3.Connection) -> Dict[str, int]:
    def count(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    return {
        "accounts": count("SELECT count(*) FROM accounts"),
        "history_lines": count("SELECT count(*) FROM history"),
        "rooms_with_history": count("SELECT count(DISTINCT room_key) FROM history"),
        "offline_messages": count("SELECT count(*) FROM offline"),
        "topics": count("SELECT count(*) FROM topics"),
        "registered_rooms": count("SELECT count(*) FROM rooms"),
        "private_lines": count("SELECT count(*) FROM private_history"),
        "file_bytes": count("PRAGMA page_count") * count("PRAGMA page_size"),
    }
