"""
The store's API for registered rooms (a base of
L{ChatStore<chatservice.persistence.store.ChatStore>}): what a registered
room keeps is written as it changes, fire-and-forget through the writer
thread like every other write, and read back at start-up by
L{ChatStore.check} (L{Loaded.rooms<chatservice.persistence.records.Loaded>}).

Each change writes the room's whole record (a few rows: at most
L{MAX_BANS<chatservice.core.moderation.MAX_BANS>} bans and
L{MAX_KEPT_OPERATORS<chatservice.core.registry.MAX_KEPT_OPERATORS>}
operators), so the last write queued is what the database holds, however
many were lost while the disk was full.
"""

from typing import TYPE_CHECKING, Callable

from ..core.registry import RoomRecord
from . import queries


class RoomStore:
    """Keeping registered rooms: L{save_room} and L{drop_room}."""

    if TYPE_CHECKING:  # what ChatStore, the class this is a base of, provides
        def _write(self, fn: Callable, args: tuple, what: str) -> bool: ...

    def save_room(self, record: RoomRecord) -> None:
        """
        Queue what registered room C{record.key} keeps now (its founder,
        modes, operators kept and bans), replacing what was kept.  Never
        blocks, never raises.
        """
        self._write(queries.save_room, (record,), "keep a registered room")

    def drop_room(self, room_key: str) -> None:
        """Queue forgetting registered room C{room_key} (its topic stays, like any room's)."""
        self._write(queries.drop_room, (room_key,), "drop a registered room")
