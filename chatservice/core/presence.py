"""
Batched notices for busy rooms: in a room of more than C{busy_room_size}
members, arrivals, departures and renames are gathered and told in one
L{events.Presence} every C{busy_room_interval} seconds.  Telling N members
about each of N arrivals one by one would be N squared lines.
"""

from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from . import events
from .limits import Limits

if TYPE_CHECKING:
    from .room import Room


class PendingPresence:
    """What happened in a busy room since its last batched notice."""

    __slots__ = ("joined", "left", "renamed", "call")

    def __init__(self, call: IDelayedCall) -> None:
        self.joined: List[str] = []
        self.left: List[str] = []
        self.renamed: List[Tuple[str, str]] = []
        self.call = call


class BusyRoomNotices:
    """
    The pending batched notices of every busy room of one chat.

    @ivar rooms: the chat's rooms by key (a notice is only sent to a room
        that still exists).
    """

    def __init__(self, clock: IReactorTime, limits: Limits, rooms: "Mapping[str, Room]") -> None:
        self.clock = clock
        self.limits = limits
        self.rooms = rooms
        self._pending: Dict[str, PendingPresence] = {}

    def batch(self, room: "Room") -> Optional[PendingPresence]:
        """
        Return what waits for C{room}'s next batched notice (starting its
        timer if need be) if it is a busy room, else L{None}: the caller
        then tells the members at once.
        """
        limit = self.limits.busy_room_size
        if not limit or len(room.members) <= limit:
            return None
        pending = self._pending.get(room.key)
        if pending is None:
            call = self.clock.callLater(self.limits.busy_room_interval, self._flush, room)
            pending = self._pending[room.key] = PendingPresence(call)
        return pending

    def arrived_or_left(self, room: "Room", name: str, joined: bool) -> bool:
        """
        In a busy room, queue C{name}'s arrival or departure for the next
        notice and return true; in an ordinary room return false.
        """
        pending = self.batch(room)
        if pending is None:
            return False
        (pending.joined if joined else pending.left).append(name)
        return True

    def _flush(self, room: "Room") -> None:
        pending = self._pending.pop(room.key)
        if room.members and self.rooms.get(room.key) is room:
            room.broadcast(events.Presence(room.name, tuple(pending.joined),
                                           tuple(pending.left), tuple(pending.renamed)))

    def cancel(self) -> None:
        """Forget every pending notice (at shutdown)."""
        for pending in self._pending.values():
            if pending.call.active():
                pending.call.cancel()
        self._pending.clear()
