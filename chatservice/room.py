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
    @ivar index: the L{chatservice.index.RoomIndex} told of every change of
        membership, or L{None}.
    """

    def __init__(self, name: str, topic: str = "", persistent: bool = False,
                 created_at: float = 0.0, outbox: "Optional[Outbox]" = None,
                 index=None) -> None:
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
        self.outbox = outbox if outbox is not None else Outbox()
        self.index = index
        # a busy room's budget of deliveries (None: full; see ChatFactory.say)
        self.delivery_tokens: Optional[float] = None
        self.delivery_checked = 0.0

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
        self._settle()
        self.members[user.key] = user
        self._group_of(user, user.current is self)[user.client.write] = None
        self._plan = None
        if self.index is not None:
            self.index.resized(self)

    def remove(self, user) -> None:
        """Remove C{user} from the members, if they are one."""
        self._settle()
        if self.members.get(user.key) is not user:
            return
        del self.members[user.key]
        self._group_of(user, user.current is self).pop(user.client.write, None)
        self._plan = None
        if self.index is not None:
            self.index.resized(self)

    def rekey(self, user, old_key: str, keep_order: bool = True) -> None:
        """
        Re-file C{user}, who was a member under C{old_key}, after a rename.
        With C{keep_order} the members are rebuilt so that they stay in order
        of arrival, which costs as much as the room is big; without it (busy
        rooms) the renamed member moves to the end, at no cost.
        """
        if old_key == user.key or self.members.get(old_key) is not user:
            return
        if keep_order:
            self.members = {user.key if key == old_key else key: member
                            for key, member in self.members.items()}
        else:
            del self.members[old_key]
            self.members[user.key] = user

    def refresh(self, user, was_focused: bool) -> None:
        """
        Move C{user}'s writer to the right group after their current room
        changed (C{was_focused} says whether this room was it before).
        """
        if self.members.get(user.key) is not user:
            return
        self._settle()
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
        self._settle()
        group = self._group_of(user, user.current is self)
        group.pop(old_write, None)
        group[user.client.write] = None
        self._plan = None

    def _settle(self) -> None:
        # Events waiting for this room were meant for its members as they
        # were: deliver them before the membership changes.
        if self.outbox.room is self:
            self.outbox.flush()

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

    def broadcast(self, event, exclude=None) -> None:
        """
        Deliver room event C{event} to every member but C{exclude}: at once,
        or, while the outbox is gathering (during one read from a client),
        together with the room's other events from the same read.
        """
        outbox = self.outbox
        if outbox.gathering:
            if outbox.room is not self:
                outbox.flush()
                outbox.room = self
            outbox.events.append((event, exclude))
        else:
            outbox.bytes_relayed += self.deliver([(event, exclude)])

    def deliver(self, batch: List[tuple]) -> int:
        """
        Write a batch of C{(event, exclude)} pairs to the members, in order,
        and return the number of bytes written.  Each event is encoded once
        per group of members; each member gets one write for the batch.
        """
        plan = self._plan
        if plan is None:
            plan = self._build_plan()
        written = 0
        if len(batch) == 1:
            event, exclude = batch[0]
            skip = exclude.client.write if exclude is not None else None
            for encode, focused, writers, group in plan:
                data = encode(event, focused)
                for write in writers:
                    if write is not skip:
                        write(data)
                written += (len(writers) - (skip in group)) * len(data)
            return written
        skips = {ex.client.write for _, ex in batch if ex is not None}
        for encode, focused, writers, group in plan:
            datas = [encode(event, focused) for event, _ in batch]
            blob = b"".join(datas)
            # Senders must not get their own lines back: they get the batch
            # without them (usually nothing, when the batch is all theirs).
            own = {
                write: b"".join(
                    data for data, (_, ex) in zip(datas, batch)
                    if ex is None or ex.client.write is not write)
                for write in skips if write in group
            }
            if own:
                for write in writers:
                    data = own.get(write, blob)
                    if data:
                        write(data)
                        written += len(data)
            else:
                for write in writers:
                    write(blob)
                written += len(writers) * len(blob)
        return written


class Outbox:
    """
    Gathers the room events caused by one read from a client, so that a
    client sending many lines at once costs each member one write per read
    instead of one per line.

    Only one room's events are gathered at a time, and anything else that
    writes to a client (a reply, a private message, a membership change in
    that room, an event in another room) flushes them first: every member
    still sees everything in the order it happened.

    @ivar gathering: true while a read is being handled.
    @ivar room: the room whose events are waiting, or L{None}.
    @ivar events: the waiting C{(event, exclude)} pairs.
    @ivar bytes_relayed: bytes written to room members so far.
    """

    def __init__(self) -> None:
        self.gathering = False
        self.room: Optional[Room] = None
        self.events: List[tuple] = []
        self.bytes_relayed = 0

    def flush(self) -> None:
        """Deliver the waiting events, if any."""
        room = self.room
        if room is not None:
            self.room = None
            batch, self.events = self.events, []
            self.bytes_relayed += room.deliver(batch)
