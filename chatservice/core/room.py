"""
A room: a name, a topic, its members, and the plan that reaches them.
"""

from typing import TYPE_CHECKING, Dict, Optional

from .delivery import DeliveryPlan, Outbox
from .moderation import RoomModeration
from .text import name_key

if TYPE_CHECKING:
    from .index import RoomIndex
    from .ratelimit import TokenBucket
    from .registry import Registration
    from .user import User


class Room:
    """
    A chat room.

    Its L{DeliveryPlan} keeps its members' writers grouped by renderer and
    by whether the room is their current one (see L{chatservice.core.delivery}).

    @ivar name: the name as first created, without C{#}.
    @ivar key: the normalised name under which it is unique.
    @ivar topic: the topic, or an empty string.
    @ivar topic_set_by: who set it (an empty string if unknown).
    @ivar topic_set_at: when it was set (0 if unknown).
    @ivar members: the users in the room, by key, in order of arrival.
    @ivar persistent: a persistent room stays when its last member leaves.
    @ivar plan: the members' writers, grouped for broadcasts.
    @ivar outbox: the outbox this room's broadcasts go through (shared by
        every room of one chat).
    @ivar index: the L{chatservice.core.index.RoomIndex} told of every change
        of membership, or L{None}.
    @ivar moderation: its operators, voiced members, bans, invites and modes
        (a L{chatservice.core.moderation.RoomModeration}).
    @ivar registration: its L{chatservice.core.registry.Registration} if a
        registered user registered it, else L{None}.
    """

    def __init__(self, name: str, topic: str = "", persistent: bool = False,
                 created_at: float = 0.0, outbox: Optional[Outbox] = None,
                 index: "Optional[RoomIndex]" = None) -> None:
        self.name = name
        self.key = name_key(name)
        self.topic = topic
        self.topic_set_by = ""
        self.topic_set_at = 0.0
        self.persistent = persistent
        self.created_at = created_at
        self.members: Dict[str, "User"] = {}
        self.plan = DeliveryPlan()
        self.outbox = outbox if outbox is not None else Outbox()
        self.index = index
        # a busy room's budget of deliveries (see ratelimit.charge_busy_room)
        self.delivery_bucket: "Optional[TokenBucket]" = None
        self.moderation = RoomModeration()
        self.registration: "Optional[Registration]" = None

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

    def add(self, user: "User") -> None:
        """Make C{user} a member (the caller records the room on the user)."""
        self.outbox.settle(self)
        self.members[user.key] = user
        self.plan.add(user.client, user.current is self)
        if self.index is not None:
            self.index.resized(self)

    def remove(self, user: "User") -> None:
        """Remove C{user} from the members, if they are one."""
        self.outbox.settle(self)
        if self.members.get(user.key) is not user:
            return
        del self.members[user.key]
        self.plan.remove(user.client, user.current is self)
        if self.index is not None:
            self.index.resized(self)

    def rekey(self, user: "User", old_key: str, keep_order: bool = True) -> None:
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

    def refresh(self, user: "User", was_focused: bool) -> None:
        """
        Move C{user}'s writer to the right group after their current room
        changed (C{was_focused} says whether this room was it before).
        """
        if self.members.get(user.key) is not user:
            return
        self.outbox.settle(self)
        self.plan.remove(user.client, was_focused)
        self.plan.add(user.client, user.current is self)

    def replace_writer(self, user: "User", old_write) -> None:
        """
        Replace C{old_write} by C{user.client.write} in the plan (a front end
        swaps its writer, for instance to start guarding a slow reader).
        """
        if self.members.get(user.key) is not user:
            return
        self.outbox.settle(self)
        focused = user.current is self
        self.plan.remove(user.client, focused, old_write)
        self.plan.add(user.client, focused)

    def broadcast(self, event, exclude: "Optional[User]" = None, own_line: bool = False) -> None:
        """
        Deliver room event C{event} to every member but C{exclude}: at once,
        or, while the outbox is gathering a batch, together with the room's
        other events from the same batch.  C{own_line}: C{event} is a line
        C{exclude} said, which front ends that echo their users' lines
        (L{IRenderer.echoes_own_lines}) deliver to them too.
        """
        self.outbox.post(self, event, exclude.client.write if exclude is not None else None,
                         own_line)
