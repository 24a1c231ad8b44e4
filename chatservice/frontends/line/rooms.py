"""
The line protocol's C{/room} command: registering a room (C{/room
register}), showing its registration (C{/room info}), giving it to another
registered user (C{/room transfer NAME}) and ending it (C{/room drop}).  As
in L{chatservice.frontends.line.commands}, the docstring is the command's
C{/help}; the rules are the core's (L{chatservice.core.registry}).
"""

import time
from typing import TYPE_CHECKING

from ...core import errors

if TYPE_CHECKING:
    from ...core.chat import Chat
    from ...core.room import Room
    from ...core.user import User


def when_text(seconds: float) -> str:
    """C{2026-12-02 01:20 UTC}."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


class RoomCommands:
    """The C{/room} command, mixed into L{chatservice.frontends.line.commands.ChatCommands}."""

    if TYPE_CHECKING:  # what the protocol it is mixed into provides
        chat: Chat
        user: User

        def info(self, text: str) -> None: ...
        def _usage(self, name: str) -> Exception: ...

    def do_room(self, arg: str) -> None:
        """register | info [ROOM] | transfer NAME | drop
        Register your current room so that it is kept (registered users who
        are its operators). /room register makes you its founder: its
        operators, bans, modes and topic survive restarts, it stays when
        empty, and you get operator status back whenever you come in. /room
        info shows a room's registration; /room transfer NAME gives it to
        another registered user and /room drop ends it (the founder only).
        Type /register PASSWORD first if your name is not registered.
        """
        action, _, rest = arg.strip().partition(" ")
        action, rest = action.lower(), rest.strip()
        registry = self.chat.registry
        if action in ("", "info"):
            if " " in rest:
                raise self._usage("room")
            room = self._visible_room(rest) if rest else self.chat.current_room(self.user)
            self._room_info(room)
            return
        room = self.chat.current_room(self.user)
        if action == "register" and not rest:
            registry.register(room, self.user)
            self.info(f"{room.display} is now registered to you: its operators, bans, modes "
                      "and topic are kept across restarts, and it stays when empty. "
                      "/room transfer NAME gives it to another registered user; /room drop "
                      "ends the registration.")
        elif action == "transfer" and rest and " " not in rest:
            name = registry.transfer(room, self.user, rest)
            self.info(f"{room.display} now belongs to {name}; you stay one of its "
                      "operators.")
        elif action == "drop" and not rest:
            registry.drop(room, self.user)
            self.info(f"{room.display} is no longer registered: it closes when its last "
                      "member leaves, as ordinary rooms do.")
        else:
            raise self._usage("room")

    def _visible_room(self, raw_name: str) -> "Room":
        room = self.chat.find_room(raw_name)
        if not self.chat.moderation.visible(room, self.user):
            raise errors.NoSuchRoom(f"There is no room called {room.display}.")
        return room

    def _room_info(self, room: "Room") -> None:
        registration = room.registration
        if room is self.chat.default_room:
            self.info(f"{room.display} is the server's default room: it always exists, and "
                      "is not registered to anyone.")
        elif registration is None:
            self.info(f"{room.display} is not registered: it closes when its last member "
                      "leaves. Its operators who are registered users can type /room "
                      "register in it to keep it.")
        else:
            kept = ", ".join(sorted(registration.operators)) or "none besides the founder"
            self.info(f"{room.display} is registered to {registration.founder} (since "
                      f"{when_text(registration.registered_at)}): its operators, bans, modes "
                      f"and topic are kept, and it stays when empty. Operators kept: {kept}.")
