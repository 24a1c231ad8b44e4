"""
What happens in the chat, as plain data.

The core produces these events; each front end (the line protocol today,
IRC or a web page later) decides how to show them.  An event is frozen and
holds only names, text and times (C{when}: the clock time the core saw
it happen, for front ends that show it, such as IRC's server-time; 0 when
a test builds an event by hand), never a live user or room: it means the
same thing whenever it is rendered (after a rename, say), and it can be
serialised as it is (C{event._asdict()}) to travel to another process.

Rooms are named as created, without C{#} (C{"lobby"}); users by the name
others see.  Nothing here knows about wording, bytes or terminals.
"""

from typing import NamedTuple, Optional, Tuple, Union


class Said(NamedTuple):
    """
    C{sender} said C{text} in C{room} (as a notice, IRC's NOTICE, when
    C{notice}: front ends without notices show it as a line).
    """

    room: str
    sender: str
    text: str
    when: float = 0.0
    notice: bool = False
    #: IRCv3 client-only tags (C{("+typing", "active")}, ...) to relay as they came.
    tags: Tuple[Tuple[str, str], ...] = ()


class Acted(NamedTuple):
    """C{sender} performed an action (C{/me waves}) in C{room}."""

    room: str
    sender: str
    text: str
    when: float = 0.0


class Joined(NamedTuple):
    """C{user} entered C{room}."""

    room: str
    user: str
    when: float = 0.0


class Left(NamedTuple):
    """C{user} left C{room}; C{reason} is their parting message, if any."""

    room: str
    user: str
    reason: str
    when: float = 0.0


class Presence(NamedTuple):
    """
    People who entered and left C{room} lately, and renames in it as
    C{(old name, new name)} pairs, gathered into one notice (busy rooms
    only: telling N members about each of N arrivals one by one is N
    squared lines).
    """

    room: str
    joined: Tuple[str, ...]
    left: Tuple[str, ...]
    renamed: Tuple[Tuple[str, str], ...] = ()


class TopicChanged(NamedTuple):
    """C{user} set the topic of C{room} (C{user} is L{None} for the server)."""

    room: str
    user: Optional[str]
    topic: str
    when: float = 0.0


class RoomClosed(NamedTuple):
    """The server closed C{room}; everyone in it was removed."""

    room: str
    reason: str


class Renamed(NamedTuple):
    """The user formerly called C{old_name} is now called C{new_name}."""

    old_name: str
    new_name: str
    when: float = 0.0


class Quit(NamedTuple):
    """C{user} left the chat altogether."""

    user: str
    reason: str
    when: float = 0.0


class Private(NamedTuple):
    """C{sender} sent C{text} privately to C{recipient}."""

    sender: str
    recipient: str
    text: str
    action: bool = False
    when: float = 0.0
    notice: bool = False
    tags: Tuple[Tuple[str, str], ...] = ()


class Announcement(NamedTuple):
    """The server or its operator says C{text} (to everyone, or one room)."""

    text: str
    room: Optional[str] = None


class ModeChanged(NamedTuple):
    """
    C{user} (L{None} for the server's operator) changed the modes of
    C{room}: C{changes} are C{("+o", "bob")}, C{("+m", "")}, ... in order
    (see L{chatservice.core.moderation}).
    """

    room: str
    user: Optional[str]
    changes: Tuple[Tuple[str, str], ...]
    when: float = 0.0


class Kicked(NamedTuple):
    """
    C{user} (L{None}: the server's operator) put C{target} out of C{room}
    for C{reason}; told to the room and to C{target}.
    """

    room: str
    user: Optional[str]
    target: str
    reason: str
    when: float = 0.0


class Invited(NamedTuple):
    """C{user} invited C{target} into C{room} (delivered to C{target} alone)."""

    room: str
    user: str
    target: str
    when: float = 0.0


#: The events a room broadcasts to its members.
RoomEvent = Union[Said, Acted, Joined, Left, Presence, TopicChanged, RoomClosed,
                  Announcement, ModeChanged, Kicked]
#: The events delivered to one user alone.
PersonalEvent = Union[Private, Renamed, Quit, Announcement, Kicked, Invited]
