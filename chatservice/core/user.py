"""
A user: one person, logged in under one name, through one front end.
"""

from typing import TYPE_CHECKING, Any, Dict, Optional

from .text import name_key

if TYPE_CHECKING:
    from .ratelimit import TokenBucket
    from .room import Room


class User:
    """
    A logged-in user.

    @ivar name: the name as shown to others.
    @ivar key: the normalised name under which it is unique.
    @ivar client: the front end (an L{IChatClient}) the user talks through.
    @ivar rooms: the rooms the user is in, by key, oldest first.
    @ivar current: the room plain text goes to, or L{None}.
    @ivar connected_at: the clock time of login.
    @ivar last_active: the clock time of the user's last line.
    @ivar registered: whether the user logged in to a registered name (or
        registered it since).
    @ivar rename_bucket: the user's renames (a
        L{chatservice.core.ratelimit.TokenBucket}; L{None} until the first).
    """

    def __init__(self, name: str, client: Any, connected_at: float = 0.0) -> None:
        self.name = name
        self.key = name_key(name)
        self.client = client
        self.rooms: Dict[str, "Room"] = {}
        self.current: Optional["Room"] = None
        self.connected_at = connected_at
        self.last_active = connected_at
        self.registered = False
        self.rename_bucket: Optional["TokenBucket"] = None

    def __repr__(self) -> str:
        rooms = ", ".join(room.display for room in self.rooms.values())
        return f"<User {self.name} in [{rooms}]>"

    def focus(self, room: Optional["Room"]) -> None:
        """
        Make C{room} (or L{None}) the room plain text goes to, keeping the
        delivery plans of both rooms concerned up to date.
        """
        old = self.current
        if old is room:
            return
        self.current = room
        if old is not None and old.key in self.rooms:
            old.refresh(self, was_focused=True)
        if room is not None:
            room.refresh(self, was_focused=False)
