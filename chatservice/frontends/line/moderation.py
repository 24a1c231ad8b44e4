"""
The moderation commands of the line protocol: C{/op}, C{/deop}, C{/voice},
C{/devoice}, C{/kick}, C{/ban}, C{/unban}, C{/invite} and C{/mode}, each
acting on the current room.  As in L{chatservice.frontends.line.commands},
each docstring is the command's C{/help}; the rules are the core's
(L{chatservice.core.moderation}).
"""

from typing import TYPE_CHECKING, Callable, List

from ...core import errors
from ...core.moderation import ModeChange, parse_modes

if TYPE_CHECKING:
    from ...core.chat import Chat
    from ...core.room import Room
    from ...core.user import User


def status_name(room: "Room", user: "User") -> str:
    """C{@alice} for an operator of C{room}, C{+bob} for a voiced member, else the name."""
    return room.moderation.prefix(user.key) + user.name


def modes_text(room: "Room", show_key: bool) -> str:
    """C{+iklnt (key: sesame, at most 10 members)}: a room's modes, in words where they hold values."""
    state = room.moderation
    letters, _ = state.modes(show_key)
    values = []
    if state.key:
        values.append(f"key: {state.key if show_key else 'hidden'}")
    if state.limit:
        values.append(f"at most {state.limit} members")
    return letters + (f" ({', '.join(values)})" if values else "")


class ModerationCommands:
    """
    The moderation commands, mixed into L{chatservice.frontends.line.commands.ChatCommands}.
    """

    if TYPE_CHECKING:  # what the protocol it is mixed into provides
        chat: Chat
        user: User

        def info(self, text: str) -> None: ...
        def error(self, text: str) -> None: ...
        def _usage(self, name: str) -> Exception: ...

    def _status_change(self, arg: str, command: str, act: Callable, already: str) -> None:
        if not arg or " " in arg:
            raise self._usage(command)
        room = self.chat.current_room(self.user)
        if not act(room, self.user, arg):
            target = self.chat.find_user(arg)
            self.info(already.format(name=target.name, room=room.display))

    def do_op(self, arg: str) -> None:
        """NAME
        Make NAME an operator of your current room (operators only).
        Operators kick, ban, invite, voice and set the room's modes; whoever
        creates a room is its first operator.
        """
        self._status_change(arg, "op", self.chat.moderation.op,
                            "{name} is already an operator of {room}.")

    def do_deop(self, arg: str) -> None:
        """NAME
        Take operator status from NAME in your current room (operators only).
        """
        self._status_change(arg, "deop", self.chat.moderation.deop,
                            "{name} is not an operator of {room}.")

    def do_voice(self, arg: str) -> None:
        """NAME
        Give NAME a voice in your current room (operators only): they may
        speak even when it is moderated (/mode +m).
        """
        self._status_change(arg, "voice", self.chat.moderation.voice,
                            "{name} already has a voice in {room}.")

    def do_devoice(self, arg: str) -> None:
        """NAME
        Take NAME's voice in your current room (operators only).
        """
        self._status_change(arg, "devoice", self.chat.moderation.devoice,
                            "{name} has no voice in {room}.")

    def do_kick(self, arg: str) -> None:
        """NAME [REASON]
        Put NAME out of your current room (operators only); they and the
        room see who did it and REASON. They stay connected and may come
        back unless you /ban them.
        """
        name, _, reason = arg.partition(" ")
        if not name:
            raise self._usage("kick")
        room = self.chat.current_room(self.user)
        self.chat.moderation.kick(room, self.user, name, reason)

    def do_ban(self, arg: str) -> None:
        """MASK
        Ban MASK from your current room (operators only): a name, or a
        pattern with * for any letters (/ban spam*). Whoever matches cannot
        join, nor speak if they are in it. /ban alone lists the bans.
        """
        if " " in arg:
            raise self._usage("ban")
        room = self.chat.current_room(self.user)
        if not arg:
            bans = list(room.moderation.bans.values())
            if bans:
                self.info(f"Bans in {room.display}: {', '.join(bans)}. Type /unban MASK "
                          "to lift one.")
            else:
                self.info(f"Nobody is banned from {room.display}. Type /ban MASK to ban someone.")
            return
        if not self.chat.moderation.ban(room, self.user, arg):
            self.info(f"{arg} is already banned from {room.display}.")

    def do_unban(self, arg: str) -> None:
        """MASK
        Lift the ban on MASK in your current room (operators only); /ban
        lists the bans.
        """
        if not arg or " " in arg:
            raise self._usage("unban")
        self.chat.moderation.unban(self.chat.current_room(self.user), self.user, arg)

    def do_invite(self, arg: str) -> None:
        """NAME
        Invite NAME into your current room: they are told, and may join it
        even if it is invite-only, has a key or is full (but not if banned).
        In an invite-only room, only operators invite.
        """
        if not arg or " " in arg:
            raise self._usage("invite")
        room = self.chat.current_room(self.user)
        target = self.chat.moderation.invite(room, self.user, arg)
        self.info(f"You invited {target.name} to {room.display}; they have been told.")

    def do_mode(self, arg: str) -> None:
        """[CHANGES]
        Show your current room's modes, or change them (operators only):
        +i invite-only, +m moderated (only operators and voiced members
        speak), +t only operators set the topic, +k KEY a password to join,
        +l N at most N members, +s secret (hidden from /rooms); - turns one
        off: /mode +m, /mode -k, /mode +l 20.
        """
        room = self.chat.current_room(self.user)
        if not arg:
            self.info(f"{room.display} modes: {modes_text(room, show_key=True)}. "
                      "Type /help mode to change them.")
            return
        words = arg.split()
        if words[0][:1] not in ("+", "-"):
            raise self._usage("mode")
        changes: List[ModeChange] = parse_modes(words)
        applied, refused = self.chat.moderation.set_modes(room, self.user, changes)
        for _, problem in refused:
            self.error(f"{problem} Type /help mode for the modes.")
        if not applied and not refused:
            self.info(f"Nothing changed: {room.display} modes are "
                      f"{modes_text(room, show_key=True)}.")


#: The hints the line protocol adds to moderation's refusals.
MODERATION_HINTS = {
    errors.NotOperator: "Type /look to see the operators (marked @).",
    errors.TargetNotInRoom: "Type /look to see who is here.",
    errors.InvalidMode: "Type /help mode for the modes.",
    errors.Banned: "Type /rooms to find another room.",
}
