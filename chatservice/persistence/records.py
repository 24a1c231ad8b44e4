"""
What the store hands out: records of accounts, topics, history lines and
offline messages, what is read at start-up, and the store's errors.
"""

from typing import Dict, NamedTuple, Optional, Sequence, Set

from ..core.registry import RoomRecord


class StoreError(Exception):
    """
    The database cannot be used; the message is one sentence for the
    operator, naming the file, the reason, and SQLite's own words, such as
    C{cannot open the database /x/chat.db: it is read-only (attempt to
    write a readonly database)}.
    """


class AccountExists(Exception):
    """L{ChatStore.create_account} for a name key that is already registered."""


class Account(NamedTuple):
    """A registered name and its password hash."""

    key: str
    name: str
    password_hash: str
    created: float
    last_seen: Optional[float] = None

    def __repr__(self) -> str:
        scheme = self.password_hash.split("$")[1] if self.password_hash.startswith("$") else "?"
        return (f"Account(key={self.key!r}, name={self.name!r}, "
                f"password_hash=<{scheme} hash>, created={self.created!r}, "
                f"last_seen={self.last_seen!r})")


class Topic(NamedTuple):
    """A room's stored topic."""

    topic: str
    set_by: str
    set_at: float


class HistoryLine(NamedTuple):
    """One stored room line (C{kind} is one of L{KINDS})."""

    id: int
    when: float
    kind: str
    sender: str
    text: str


class FoundLine(NamedTuple):
    """A room line found by L{ChatStore.search_history}, with its room."""

    id: int
    room_key: str
    when: float
    kind: str
    sender: str
    text: str


class PrivateLine(NamedTuple):
    """
    One stored line of a private conversation, as kept for one account:
    C{sender} sent C{text} to C{recipient} (their names as shown then);
    C{outgoing}: the account's own line.  C{kind} is C{say} or C{act}.
    """

    id: int
    when: float
    kind: str
    sender: str
    recipient: str
    text: str
    outgoing: bool

    @property
    def peer(self) -> str:
        """The other side's name as shown then."""
        return self.recipient if self.outgoing else self.sender


class PrivateTarget(NamedTuple):
    """Someone an account has a private conversation with, and its last line's time."""

    peer: str
    when: float


class OfflineMessage(NamedTuple):
    """A private message kept for a registered user who was offline."""

    when: float
    sender: str
    text: str
    action: bool


class RoomHistory(NamedTuple):
    """How much history one room has (for the admin shell)."""

    room_key: str
    lines: int
    first: float
    last: float


class AccountInfo(NamedTuple):
    """An account with what the store holds about it (for the admin shell)."""

    account: Account
    offline_pending: int
    lines_said: int


class Loaded(NamedTuple):
    """
    What L{ChatStore.check} reads at start-up.

    @ivar topics: stored topics by room key.
    @ivar registered: the registered name keys; the same set as
        L{ChatStore.registered}, kept current as accounts come and go.
    @ivar offline_waiting: how many offline messages wait, by recipient key.
    @ivar rooms: the registered rooms, as L{RoomRecord}s, by name key.
    """

    topics: Dict[str, Topic]
    registered: Set[str]
    offline_waiting: Dict[str, int]
    rooms: Sequence[RoomRecord] = ()
