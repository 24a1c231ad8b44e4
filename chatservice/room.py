"""
A room: a name, a topic, its members, and the broadcast that reaches them.
"""

from typing import Dict, List, Optional, Tuple

from .text import name_key


class Room:
    """
    A chat room.

    Broadcasting is the hot path of the whole server, so the room keeps a
    I{delivery plan}: its members' write callables grouped by front-end class
    and by whether the room is their current one.  A broadcast encodes the
    event once per group and hands the same bytes to every writer in it; no
    per-recipient formatting, lookups or logging.

    @ivar name: the name as first created, without C{#}.
    @ivar key: the normalised name under which it is unique.
    @ivar topic: the topic, or an empty string.
    @ivar members: the users in the room, by key, in order of arrival.
    @ivar persistent: a persistent room stays when its last member leaves.
    """

    def __init__(self, name: str, topic: str = "", persistent: bool = False,
                 created_at: float = 0.0) -> None:
        self.name = name
        self.key = name_key(name)
        self.topic = topic
        self.topic_set_by = ""
        self.persistent = persistent
        self.created_at = created_at
        self.members: Dict[str, object] = {}
        # (client class, focused) -> {write: None}; dicts for O(1) removal.
        self._groups: Dict[Tuple[type, bool], Dict[object, None]] = {}
        self._plan: Optional[List[tuple]] = None

    @property
    def display(self) -> str:
        """The room's name as shown to users: C{#name}."""
        return "#" + self.name

    def __repr__(self) -> str:
        return f"<Room {self.display}: {len(self.members)} members>"

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, user) -> bool:
        return self.members.get(user.key) is user

    def add(self, user) -> None:
        """Make C{user} a member (the caller records the room on the user)."""
        self.members[user.key] = user
        self._group_of(user, user.current is self)[user.client.write] = None
        self._plan = None

    def remove(self, user) -> None:
        """Remove C{user} from the members, if they are one."""
        if self.members.get(user.key) is not user:
            return
        del self.members[user.key]
        self._group_of(user, user.current is self).pop(user.client.write, None)
        self._plan = None

    def rekey(self, user, old_key: str) -> None:
        """Re-file C{user}, who was a member under C{old_key}, after a rename."""
        if self.members.get(old_key) is user:
            del self.members[old_key]
            self.members[user.key] = user

    def refresh(self, user, was_focused: bool) -> None:
        """
        Move C{user}'s writer to the right group after their current room
        changed (C{was_focused} says whether this room was it before).
        """
        if self.members.get(user.key) is not user:
            return
        self._group_of(user, was_focused).pop(user.client.write, None)
        self._group_of(user, user.current is self)[user.client.write] = None
        self._plan = None

    def replace_writer(self, user, old_write) -> None:
        """
        Replace C{old_write} by C{user.client.write} in the plan (a front end
        swaps its writer, for instance to start guarding a slow reader).
        """
        if self.members.get(user.key) is not user:
            return
        group = self._group_of(user, user.current is self)
        group.pop(old_write, None)
        group[user.client.write] = None
        self._plan = None

    def _group_of(self, user, focused: bool) -> Dict[object, None]:
        group_key = (type(user.client), focused)
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups[group_key] = {}
        return group

    def _build_plan(self) -> List[tuple]:
        plan = [
            (client_class.encode_room_event, focused, tuple(writers), writers)
            for (client_class, focused), writers in self._groups.items()
            if writers
        ]
        self._plan = plan
        return plan

    def broadcast(self, event, exclude=None) -> int:
        """
        Deliver room event C{event} to every member but C{exclude}, and
        return the number of bytes written.
        """
        skip = exclude.client.write if exclude is not None else None
        plan = self._plan
        if plan is None:
            plan = self._build_plan()
        written = 0
        for encode, focused, writers, group in plan:
            data = encode(event, focused)
            for write in writers:
                if write is not skip:
                    write(data)
            written += (len(writers) - (skip in group)) * len(data)
        return written
