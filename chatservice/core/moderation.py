"""
The rules of moderation: room operators and voiced members, bans, invites
and a room's modes, for every front end alike.

A room's moderation state is a L{RoomModeration} (C{room.moderation}); the
L{Moderation} of a chat (C{chat.moderation}) changes it, checking who may,
tells the room as L{chatservice.core.events}, and logs what every moderator
did.  Who acts is a L{User}, or L{None} for the server's operator (the admin
shell), who outranks every room operator.

Modes are named by letter, the same for every front end:

  - C{o} NAME / C{v} NAME: make NAME an operator / give NAME a voice;
  - C{b} MASK: ban MASK (a name, or a pattern with C{*});
  - C{i}: invite-only; C{m}: moderated (only operators and voiced members
    speak); C{t}: only operators set the topic; C{s}: secret (hidden from
    room listings for non-members);
  - C{k} KEY: a password to join; C{l} N: at most N members.
"""

import re
from typing import (TYPE_CHECKING, Dict, Iterable, List, NamedTuple, Optional, Sequence,
                    Set, Tuple)

from twisted.logger import Logger

from . import errors, events
from .text import name_key, sanitize

if TYPE_CHECKING:
    from .chat import Chat
    from .room import Room
    from .user import User

#: The modes that are on or off, in the order they are shown.
FLAG_MODES = "imst"
#: The modes that hold a value when on (a key, a member limit).
VALUE_MODES = "kl"
#: The modes that name a member or a mask, and are lists rather than settings.
LIST_MODES = "ovb"
#: Every mode letter the core knows.
ALL_MODES = LIST_MODES + VALUE_MODES + FLAG_MODES
#: Most bans, and most pending invites, one room keeps.
MAX_BANS = 100
MAX_INVITES = 100
#: Longest ban mask and longest key.
MAX_MASK_LENGTH = 64
MAX_KEY_LENGTH = 23
#: Largest member limit (+l).
MAX_MEMBER_LIMIT = 100000


class ModeChange(NamedTuple):
    """One change: C{adding} (C{+}) or not (C{-}) mode C{letter}, with C{argument} or C{""}."""

    adding: bool
    letter: str
    argument: str = ""


def ban_key(mask: str) -> str:
    """
    The part of ban mask C{mask} that is matched against name keys: its
    nick part (before C{!}, for IRC's C{nick!user@host}), folded like names.
    """
    return name_key(sanitize(mask).split("!", 1)[0]) or "*"


def mask_matches(key: str, name: str) -> bool:
    """Whether ban key C{key} (see L{ban_key}; C{*} is any letters) matches name key C{name}."""
    if "*" not in key:
        return key == name
    pattern = ".*".join(re.escape(part) for part in key.split("*"))
    return re.fullmatch(pattern, name, re.DOTALL) is not None


class RoomModeration:
    """
    One room's moderation state.

    @ivar operators: the name keys of its operators (members only).
    @ivar voiced: the name keys of its voiced members.
    @ivar bans: the ban masks as given, by their L{ban_key}, oldest first.
    @ivar invited: the name keys of people invited in (an invite is used up on joining).
    @ivar flags: the letters of the on/off modes that are on (C{"imst"}).
    @ivar key: the password to join, or C{""}.
    @ivar limit: the most members, or 0 for no limit.
    """

    def __init__(self) -> None:
        self.operators: Set[str] = set()
        self.voiced: Set[str] = set()
        self.bans: Dict[str, str] = {}
        self.invited: Set[str] = set()
        self.flags: Set[str] = set()
        self.key = ""
        self.limit = 0

    def is_banned(self, key: str) -> bool:
        """Whether a ban matches the name key C{key}."""
        return any(mask_matches(mask, key) for mask in self.bans)

    def may_speak(self, key: str) -> bool:
        """Whether the member of name key C{key} may talk (moderated and bans)."""
        if key in self.operators or key in self.voiced:
            return True
        return "m" not in self.flags and not self.is_banned(key)

    def prefix(self, key: str) -> str:
        """The highest status prefix of C{key}: C{@} for an operator, C{+} for a voiced member, else C{""}."""
        return "@" if key in self.operators else "+" if key in self.voiced else ""

    def prefixes(self, key: str) -> str:
        """Every status prefix of C{key}: C{@+} for a voiced operator."""
        return ("@" if key in self.operators else "") + ("+" if key in self.voiced else "")

    def modes(self, show_key: bool = True) -> Tuple[str, List[str]]:
        """
        The modes as letters (C{+n} always: only members talk) and their
        values: C{("+iklmnst", ["KEY", "10"])}; the key is C{*} unless
        C{show_key}.
        """
        letters = sorted(self.flags | {"n"} | ({"k"} if self.key else set())
                         | ({"l"} if self.limit else set()))
        values = []
        for letter in letters:
            if letter == "k":
                values.append(self.key if show_key else "*")
            elif letter == "l":
                values.append(str(self.limit))
        return "+" + "".join(letters), values

    def renamed(self, old_key: str, new_key: str) -> None:
        """Carry a renamed member's status over to their new name key."""
        for keys in (self.operators, self.voiced):
            if old_key in keys:
                keys.discard(old_key)
                keys.add(new_key)

    def forget(self, key: str) -> None:
        """Drop the status of a member who left (a newcomer may take the name)."""
        self.operators.discard(key)
        self.voiced.discard(key)


class Moderation:
    """
    Moderation's rules over the rooms of one L{Chat}: who may do what, and
    what it does.
    """

    log = Logger()

    def __init__(self, chat: "Chat") -> None:
        self.chat = chat

    # -- who may ----------------------------------------------------------------

    @staticmethod
    def is_operator(room: "Room", user: "Optional[User]") -> bool:
        """Whether C{user} is an operator of C{room} (L{None}, the server's operator, always is)."""
        return user is None or user.key in room.moderation.operators

    def require_operator(self, room: "Room", by: "Optional[User]") -> None:
        """Raise L{errors.NotOperator} unless C{by} is an operator of C{room}."""
        if not self.is_operator(room, by):
            raise errors.NotOperator(f"You are not an operator of {room.display}.")

    def check_join(self, room: "Room", user: "User", key: Optional[str]) -> None:
        """
        Raise why C{user} may not enter C{room}: a ban, invite-only, a
        missing or wrong key, or the member limit (an invite lets one past
        all but a ban); else use up their invite, if any.
        """
        state = room.moderation
        if state.is_banned(user.key):
            raise errors.Banned(f"You are banned from {room.display}: ask one of its "
                                "operators to /unban you.")
        invited = user.key in state.invited
        if not invited:
            if "i" in state.flags:
                raise errors.InviteOnly(
                    f"{room.display} is invite-only: ask an operator to /invite you.")
            if state.key and key != state.key:
                raise errors.BadKey(
                    f"{room.display} needs a key: /join {room.display} KEY." if not key else
                    f"That is not the key of {room.display}: /join {room.display} KEY "
                    "with the right one.")
            if state.limit and len(room) >= state.limit:
                raise errors.RoomFull(
                    f"{room.display} is full ({state.limit} members at most): try again "
                    "later, or ask an operator to /invite you.")
        state.invited.discard(user.key)

    def check_speak(self, room: "Room", user: "User") -> None:
        """Raise L{errors.CannotSpeak} if C{user} may not talk in C{room}."""
        state = room.moderation
        if state.may_speak(user.key):
            return
        if "m" in state.flags:
            raise errors.CannotSpeak(
                f"{room.display} is moderated: only its operators and voiced members "
                "can speak. Ask an operator to /voice you.")
        raise errors.CannotSpeak(f"You are banned from {room.display} and cannot speak there: "
                                 "ask an operator to /unban you.")

    def check_topic(self, room: "Room", user: "User") -> None:
        """Raise L{errors.NotOperator} if C{room}'s topic is for operators (+t) and C{user} is not one."""
        state = room.moderation
        if "t" in state.flags and user.key not in state.operators:
            raise errors.NotOperator(
                f"Only the operators of {room.display} can set its topic.")
        if not state.may_speak(user.key):
            self.check_speak(room, user)

    def visible(self, room: "Room", user: "Optional[User]") -> bool:
        """Whether C{room} shows in listings to C{user} (a secret room only to its members)."""
        return "s" not in room.moderation.flags or (user is not None and user in room)

    # -- changing modes ---------------------------------------------------------

    def set_modes(self, room: "Room", by: "Optional[User]",
                  changes: Sequence[ModeChange]
                  ) -> Tuple[List[ModeChange], List[Tuple[ModeChange, errors.ChatError]]]:
        """
        Apply C{changes} to C{room} on behalf of C{by} (who must be an
        operator, else L{errors.NotOperator} is raised and nothing changes).
        Return the changes made (told to the room in one
        L{events.ModeChanged}) and the others, each with why it was refused.
        """
        self.require_operator(room, by)
        applied: List[ModeChange] = []
        refused: List[Tuple[ModeChange, errors.ChatError]] = []
        for change in changes:
            try:
                done = self._apply(room, change)
            except errors.ChatError as e:
                refused.append((change, e))
                continue
            if done is not None:
                applied.append(done)
        if applied:
            self.chat.registry.modes_changed(room, applied)
            who = by.name if by is not None else None
            room.broadcast(events.ModeChanged(
                room.name, who, tuple((("+" if c.adding else "-") + c.letter, c.argument)
                                      for c in applied), self.chat.clock.seconds()))
            for change in applied:
                self.log.info("moderation: {by} set {mode} {argument} in {room}",
                              by=who or "the server operator",
                              mode=("+" if change.adding else "-") + change.letter,
                              argument=change.argument, room=room.display)
        return applied, refused

    def _apply(self, room: "Room", change: ModeChange) -> Optional[ModeChange]:
        """Make one change; return it as it was made, L{None} if it changed nothing."""
        state = room.moderation
        adding, letter, argument = change
        if letter in "ov":
            member = self._member(room, argument)
            keys = state.operators if letter == "o" else state.voiced
            if (member.key in keys) == adding:
                return None
            (keys.add if adding else keys.discard)(member.key)
            return ModeChange(adding, letter, member.name)
        if letter == "b":
            return self._ban(state, adding, argument)
        if letter == "n":  # always on: only members talk in a room
            if adding:
                return None
            raise errors.InvalidMode("Mode +n is always on: only members talk in a room.")
        if letter in FLAG_MODES:
            if (letter in state.flags) == adding:
                return None
            (state.flags.add if adding else state.flags.discard)(letter)
            return ModeChange(adding, letter)
        if letter == "k":
            if not adding:
                if not state.key:
                    return None
                state.key = ""
                return ModeChange(False, "k", "*")
            key = sanitize(argument)
            if not key or " " in key or "," in key or len(key) > MAX_KEY_LENGTH:
                raise errors.InvalidMode(
                    f"A key is one word of 1 to {MAX_KEY_LENGTH} characters, "
                    "such as +k opensesame.")
            state.key = key
            return ModeChange(True, "k", key)
        if letter == "l":
            if not adding:
                if not state.limit:
                    return None
                state.limit = 0
                return ModeChange(False, "l")
            limit = int(argument) if argument.isascii() and argument.isdigit() else 0
            if not 0 < limit <= MAX_MEMBER_LIMIT:
                raise errors.InvalidMode(
                    f"A member limit is a number from 1 to {MAX_MEMBER_LIMIT:,}, such as +l 10.")
            state.limit = limit
            return ModeChange(True, "l", str(limit))
        raise errors.InvalidMode(
            f"There is no mode {letter!r}: the modes are +i, +m, +t, +s, +k KEY and +l N.")

    def _member(self, room: "Room", raw_name: str) -> "User":
        """The member of C{room} called C{raw_name}, or raise why not."""
        user = self.chat.find_user(raw_name)
        if user not in room:
            raise errors.TargetNotInRoom(f"{user.name} is not in {room.display}.")
        return user

    @staticmethod
    def _ban(state: RoomModeration, adding: bool, raw_mask: str) -> Optional[ModeChange]:
        mask = sanitize(raw_mask)
        if not mask or " " in mask or len(mask) > MAX_MASK_LENGTH:
            raise errors.InvalidMode(
                f"A ban mask is a name, or a pattern with * for any letters (such as "
                f"spam*), of at most {MAX_MASK_LENGTH} characters.")
        key = ban_key(mask)
        if not adding:
            if key not in state.bans:
                raise errors.InvalidMode(f"There is no ban on {mask}.")
            return ModeChange(False, "b", state.bans.pop(key))
        if key in state.bans:
            return None
        if len(state.bans) >= MAX_BANS:
            raise errors.InvalidMode(
                f"The room already has {MAX_BANS} bans, the most it keeps: lift one first.")
        state.bans[key] = mask
        return ModeChange(True, "b", mask)

    # -- one change at a time ------------------------------------------------------

    def _one(self, room: "Room", by: "Optional[User]", change: ModeChange) -> bool:
        """Make one change, raising why it was refused; return whether it changed anything."""
        applied, refused = self.set_modes(room, by, [change])
        if refused:
            raise refused[0][1]
        return bool(applied)

    def op(self, room: "Room", by: "Optional[User]", name: str) -> bool:
        """Make member C{name} an operator of C{room}."""
        return self._one(room, by, ModeChange(True, "o", name))

    def deop(self, room: "Room", by: "Optional[User]", name: str) -> bool:
        """Take operator status from member C{name}."""
        return self._one(room, by, ModeChange(False, "o", name))

    def voice(self, room: "Room", by: "Optional[User]", name: str) -> bool:
        """Let member C{name} speak in C{room} even when it is moderated."""
        return self._one(room, by, ModeChange(True, "v", name))

    def devoice(self, room: "Room", by: "Optional[User]", name: str) -> bool:
        """Take member C{name}'s voice."""
        return self._one(room, by, ModeChange(False, "v", name))

    def ban(self, room: "Room", by: "Optional[User]", mask: str) -> bool:
        """Ban C{mask} from C{room}: matching people cannot join, nor speak if they are in it."""
        return self._one(room, by, ModeChange(True, "b", mask))

    def unban(self, room: "Room", by: "Optional[User]", mask: str) -> bool:
        """Lift the ban on C{mask}."""
        return self._one(room, by, ModeChange(False, "b", mask))

    # -- kicks and invites -----------------------------------------------------------

    def kick(self, room: "Room", by: "Optional[User]", name: str, reason: str = "") -> "User":
        """
        Put member C{name} out of C{room} (they stay connected): the room
        and they are told who did it and why.  Return the kicked user.
        """
        self.require_operator(room, by)
        target = self._member(room, name)
        who = by.name if by is not None else None
        reason = sanitize(reason)
        event = events.Kicked(room.name, who, target.name, reason, self.chat.clock.seconds())
        room.broadcast(event, exclude=target)
        self.chat.remove_member(room, target)
        target.client.deliver(event)
        self.log.info("moderation: {by} kicked {name} from {room} ({reason})",
                      by=who or "the server operator", name=target.name,
                      room=room.display, reason=reason or "no reason given")
        return target

    def invite(self, room: "Room", by: "User", name: str) -> "User":
        """
        Invite C{name} into C{room} (past invite-only, its key and its
        limit, but not a ban), telling them; C{by} must be a member, and an
        operator if the room is invite-only.  Return the invited user.
        """
        self.chat.member_room(by, room)
        state = room.moderation
        if "i" in state.flags:
            self.require_operator(room, by)
        target = self.chat.find_user(name)
        if target in room:
            raise errors.AlreadyInRoom(f"{target.name} is already in {room.display}.")
        if target.key not in state.invited and len(state.invited) >= MAX_INVITES:
            raise errors.InvalidMode(
                f"{room.display} already has {MAX_INVITES} invites waiting: try again once "
                "some are used.")
        state.invited.add(target.key)
        target.client.deliver(events.Invited(room.name, by.name, target.name,
                                             self.chat.clock.seconds()))
        self.log.info("moderation: {by} invited {name} to {room}", by=by.name,
                      name=target.name, room=room.display)
        return target

    def founded(self, room: "Room", user: "User") -> None:
        """C{user} created C{room}: they are its first operator."""
        room.moderation.operators.add(user.key)


def parse_modes(words: Iterable[str]) -> List[ModeChange]:
    """
    C{["+ov-m", "bob", "carol"]} as changes: each letter of a C{+}/C{-}
    word, with the next argument for the letters that take one (C{o}, C{v},
    C{b}, C{+k}, C{+l}).  Raise L{errors.InvalidMode} for a letter missing
    its argument.
    """
    words = list(words)
    if not words:
        return []
    flags, arguments = words[0], words[1:]
    changes: List[ModeChange] = []
    adding = True
    for char in flags:
        if char in "+-":
            adding = char == "+"
            continue
        if char in LIST_MODES or (adding and char in VALUE_MODES):
            if not arguments:
                raise errors.InvalidMode(
                    f"Mode {'+' if adding else '-'}{char} needs an argument, "
                    f"such as {'+' if adding else '-'}{char} {_EXAMPLES.get(char, 'NAME')}.")
            changes.append(ModeChange(adding, char, arguments.pop(0)))
        else:
            changes.append(ModeChange(adding, char))
    return changes


_EXAMPLES = {"k": "KEY", "l": "10", "b": "MASK"}
