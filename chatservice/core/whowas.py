"""
The names people had: who quit, or renamed, and when (IRC's C{WHOWAS}).

A fixed number of the latest departures is kept, newest last, so a look-up
costs at most that many comparisons, whatever the chat holds; nothing is
written to disk, and a restart forgets them.
"""

from collections import deque
from typing import Deque, Iterable, List, NamedTuple

from .text import name_key

#: How many departures (quits and renames) are remembered, for everyone together.
WHOWAS_SIZE = 1000


class Departure(NamedTuple):
    """
    One name someone stopped using: C{name} as it was shown, the user name
    and real name their client gave (IRC's C{USER}; empty for the other
    front ends), C{when} (seconds since the epoch) and C{why}
    (C{"quit"} or C{"renamed"}).
    """

    name: str
    username: str
    realname: str
    when: float
    why: str


class NameHistory:
    """The latest L{Departure}s, at most C{size} of them."""

    def __init__(self, size: int = WHOWAS_SIZE) -> None:
        self._entries: Deque[Departure] = deque(maxlen=max(0, size))

    def record(self, name: str, client, when: float, why: str) -> None:
        """C{name} (used through C{client}) is no longer in use: remember it."""
        self._entries.append(Departure(
            name, getattr(client, "username", "") or "",
            getattr(client, "realname", "") or "", when, why))

    def find(self, keys: Iterable[str], matches=None, limit: int = 0) -> List[Departure]:
        """
        The departures whose name has one of the name keys C{keys} (or, for
        a key with a C{*}, that C{matches(key, name_key)}), newest first, at
        most C{limit} of them (0 or less: all).
        """
        exact = set()
        patterns = []
        for key in keys:
            if matches is not None and "*" in key:
                patterns.append(key)
            else:
                exact.add(key)
        found: List[Departure] = []
        for entry in reversed(self._entries):
            key = name_key(entry.name)
            if key in exact or any(matches(pattern, key) for pattern in patterns):
                found.append(entry)
                if 0 < limit <= len(found):
                    break
        return found

    def __len__(self) -> int:
        return len(self._entries)
