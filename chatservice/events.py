"""
What happens in the chat, as plain data.

The factory and rooms produce these events; each front end (the line
protocol today, IRC or a web page later) decides how to show them.  Nothing
here knows about wording, bytes or terminals.
"""

from typing import NamedTuple, Optional, Tuple


class Said(NamedTuple):
    """C{sender} said C{text} in C{room}."""

    room: object
    sender: object
    text: str


class Acted(NamedTuple):
    """C{sender} performed an action (C{/me waves}) in C{room}."""

    room: object
    sender: object
    text: str


class Joined(NamedTuple):
    """C{user} entered C{room}."""

    room: object
    user: object


class Left(NamedTuple):
    """C{user} left C{room}; C{reason} is their parting message, if any."""

    room: object
    user: object
    reason: str


class Presence(NamedTuple):
    """
    People who entered and left C{room} lately, and renames in it as
    C{(old name, new name)} pairs, gathered into one notice (busy rooms
    only: telling N members about each of N arrivals one by one is N
    squared lines).
    """

    room: object
    joined: Tuple[str, ...]
    left: Tuple[str, ...]
    renamed: Tuple[Tuple[str, str], ...] = ()


class TopicChanged(NamedTuple):
    """C{user} set the topic of C{room} (C{user} is L{None} for the server)."""

    room: object
    user: Optional[object]
    topic: str


class RoomClosed(NamedTuple):
    """The server closed C{room}; everyone in it was removed."""

    room: object
    reason: str


class Renamed(NamedTuple):
    """C{user}, formerly called C{old_name}, has a new name."""

    user: object
    old_name: str


class Quit(NamedTuple):
    """C{user} left the chat altogether."""

    user: object
    reason: str


class Private(NamedTuple):
    """C{sender} sent C{text} privately to C{recipient}."""

    sender: object
    recipient: object
    text: str
    action: bool = False


class Announcement(NamedTuple):
    """The server or its operator says C{text} (to everyone, or one room)."""

    text: str
    room: Optional[object] = None
