"""
The slash commands of the line protocol.

Each command is a C{do_<name>} method of L{ChatCommands}; its docstring is
its C{/help} text: the first line gives the arguments, the rest explains it.
The methods parse arguments and word replies; the rules are the core's
(L{chatservice.core.chat.Chat}).
"""

import difflib
import inspect
import math
from itertools import islice
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Tuple

from twisted.internet.defer import Deferred

from ...core import errors
from ...core.limits import MAX_LISTED
from ...core.text import check_room_name, clean_room_name, name_key, sanitize
from .moderation import ModerationCommands, modes_text, status_name
from .rooms import RoomCommands

if TYPE_CHECKING:
    from ...core.chat import Chat
    from ...core.room import Room
    from ...core.user import User

#: Other names people type for the same commands.
ALIASES: Dict[str, str] = {
    "logout": "quit",
    "exit": "quit",
    "part": "leave",
    "tell": "msg",
    "whisper": "msg",
    "names": "look",
    "list": "rooms",
}

#: Lines /history shows when no number is given, and the most it shows.
HISTORY_LINES = 50
MAX_HISTORY_LINES = 500

#: Most rooms a /rooms PATTERN with a * inside it looks at, so that one
#: command costs a bounded amount however many rooms there are.
MAX_ROOMS_SEARCHED = 1000



class CommandUsageError(Exception):
    """A command was typed with the wrong arguments; the message says how to."""


def parse_count(text: str) -> Optional[int]:
    """
    Return C{text} as a whole number written in ASCII digits, or L{None}.
    (C{str.isdigit} alone also accepts C{"²"} and C{"①"}, which C{int}
    refuses.)
    """
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _counted(count: int, word: str) -> str:
    """C{1 room}, C{5,000 rooms}."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _glob(parts: List[str]) -> Callable[[str], bool]:
    """
    Return a test of whether a name matches the pattern made of C{parts}
    joined by C{*} (which stands for any letters).  Matching goes left to
    right without backtracking, in time linear in the name and the pattern.
    """
    first, *middle, last = parts
    middle = [part for part in middle if part]  # "a**b" is "a*b"
    least = sum(len(part) for part in parts)

    def match(name: str) -> bool:
        if len(name) < least or not name.startswith(first) or not name.endswith(last):
            return False
        position, end = len(first), len(name) - len(last)
        for part in middle:
            found = name.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return match


def _names(names: Iterable[str], total: int) -> str:
    """
    The first L{MAX_LISTED} of C{names}, then "and N more" up to C{total}.  Only
    the names shown are taken from the iterable: in a room of ten thousand,
    every join would otherwise list all of them (a third of the server's
    time in a login storm).
    """
    shown = ", ".join(islice(names, MAX_LISTED))
    if total > MAX_LISTED:
        shown += f" and {total - MAX_LISTED} more"
    return shown


class ChatCommands(ModerationCommands, RoomCommands):
    """
    The command table, mixed into the line protocol.

    Expects C{self.chat}, C{self.user}, the output methods C{send},
    C{info} and C{error}, and the flood-control methods C{charge} and
    C{refund} of L{chatservice.frontends.line.protocol.ChatProtocol}.
    """

    if TYPE_CHECKING:  # what the protocol it is mixed into provides
        chat: Chat
        user: User

        def send(self, text: str) -> None: ...
        def info(self, text: str) -> None: ...
        def error(self, text: str) -> None: ...
        def disconnect(self, reason: str) -> None: ...
        def report(self, d: Deferred) -> Deferred: ...
        def charge(self, lines: int) -> float: ...
        def refund(self, lines: int) -> None: ...
        address: Optional[str]
        def show_history(self, room: Room, count: int, asked: bool = False) -> None: ...
        def show_private_history(self, raw_peer: str, count: int) -> None: ...

    # -- the table ----------------------------------------------------------

    @classmethod
    def command_names(cls) -> List[str]:
        """Return the names of all commands, in the order /help lists them."""
        names = [name[3:] for name in vars(ChatCommands) if name.startswith("do_")]
        moderation = [name[3:] for mixin in (ModerationCommands, RoomCommands)
                      for name in vars(mixin) if name.startswith("do_")]
        after = names.index("topic") + 1  # the moderation commands come after /topic
        return names[:after] + moderation + names[after:]

    def find_command(self, name: str) -> Optional[Callable[[str], None]]:
        """Return the handler for command C{name} (or an alias), if any."""
        name = name.lower()
        name = ALIASES.get(name, name)
        if not name.isidentifier():
            return None
        return getattr(self, "do_" + name, None)

    @classmethod
    def command_help(cls, name: str) -> Tuple[str, str]:
        """Return the argument synopsis and the explanation of C{name}."""
        doc = getattr(cls, "do_" + name).__doc__ or ""
        synopsis, _, explanation = doc.partition("\n")
        return synopsis.strip(), inspect.cleandoc(explanation)

    def unknown_command(self, name: str) -> None:
        """Explain that C{/name} is not a command, suggesting a near one."""
        if not name:
            self.error(
                "Type a command after the slash, such as /help. To say "
                "something that starts with a slash, type /say TEXT."
            )
            return
        known = self.command_names() + list(ALIASES)
        close = difflib.get_close_matches(name.lower(), known, n=1)
        guess = f" Did you mean /{close[0]}?" if close else ""
        name = sanitize(name)
        shown = name if len(name) <= 20 else name[:20] + "..."
        self.error(f"Unknown command /{shown}.{guess} Type /help for the list of commands.")

    def _usage(self, name: str) -> CommandUsageError:
        synopsis, _ = self.command_help(name)
        return CommandUsageError(
            f"Usage: /{name} {synopsis}. Type /help {name} for more."
        )

    def describe_room(self, room, joined: bool = False) -> None:
        """Tell the user who is in C{room} and what its topic is."""
        if joined:
            self.send(f"-> You joined {room.display}")
        if room.topic:
            self.info(f"Topic: {room.topic}")
        others = len(room) - (self.user in room)
        if others:
            names = (status_name(room, u) for u in room.members.values() if u is not self.user)
            self.info(f"Here with you: {_names(names, others)} ({_plural(len(room), 'user')})")
        else:
            self.info(f"You are alone in {room.display}.")
        if joined:
            self.show_history(room, self.chat.replay_lines)

    # -- the commands, in /help order ----------------------------------------

    def do_help(self, arg: str) -> None:
        """[COMMAND]
        List the commands, or explain COMMAND (for example: /help join).
        """
        if arg:
            wanted = sanitize(arg).lstrip("/").lower()
            name = ALIASES.get(wanted, wanted)
            if name not in self.command_names():
                self.error(f"There is no command /{wanted[:20]}. Type /help for the list.")
                return
            synopsis, explanation = self.command_help(name)
            self.info(f"/{name} {synopsis}".rstrip())
            self.info("  " + " ".join(explanation.split()))
            aliases = [a for a, target in ALIASES.items() if target == name]
            if aliases:
                self.info("  Also: " + ", ".join("/" + a for a in aliases))
            return
        self.info("Commands (type /help COMMAND for more about one):")
        for name in self.command_names():
            synopsis, explanation = self.command_help(name)
            usage = f"/{name} {synopsis}".rstrip()
            summary = " ".join(explanation.split()).split(". ")[0].rstrip(".")
            self.info(f"  {usage:<22} {summary}")
        self.info("Anything else you type is said to your current room.")

    def do_motd(self, arg: str) -> None:
        """
        Show the message of the day (the server's news, shown at login).
        """
        motd = self.chat.motd
        if not motd.strip():
            self.info(f"{self.chat.server_name} has no message of the day.")
            return
        for line in motd.splitlines():
            self.info(line)

    def do_who(self, arg: str) -> None:
        """[NAME]
        List everyone online and the rooms they are in, or show one user.
        """
        chat = self.chat
        if arg:
            user = chat.find_user(arg)
            self.info(f"{user.name} is online, in {self._their_rooms(user)}.")
            return
        total = len(chat.users)
        self.info(f"{_counted(total, 'user')} online:")
        for key in chat.user_index.first(MAX_LISTED):
            user = chat.users[key]
            self.info(f"  {user.name} ({self._their_rooms(user)})")
        if total > MAX_LISTED:
            self.info(f"  ... and {total - MAX_LISTED:,} more. Type /who NAME to look one up.")

    def _their_rooms(self, user) -> str:
        """C{#lobby, @#games}: C{user}'s rooms that this user may see, with their status in each."""
        visible = self.chat.moderation.visible
        return ", ".join(room.moderation.prefix(user.key) + room.display
                         for room in user.rooms.values()
                         if visible(room, self.user)) or "no room"

    def do_look(self, arg: str) -> None:
        """
        Show your current room: its topic and who is in it.
        """
        room = self.chat.current_room(self.user)
        names = (status_name(room, u) for u in room.members.values())
        modes = modes_text(room, show_key=True)
        shown = f" (modes {modes})" if modes != "+n" else ""
        self.info(f"You are in {room.display}{shown}"
                  + (f". Topic: {room.topic}" if room.topic else "."))
        self.info(f"{_plural(len(room), 'user')} here: {_names(names, len(room))}")

    def do_rooms(self, arg: str) -> None:
        """[PATTERN]
        List the rooms, the largest first, with how many people are in each
        and their topics. With PATTERN, list the rooms whose names start with
        it, by name; a * in PATTERN stands for any letters: /rooms game,
        /rooms *chat*. A long list shows its first 100 rooms and says how many
        more there are.
        """
        if " " in arg:
            raise self._usage("rooms")
        chat = self.chat
        total = len(chat.rooms)
        if not arg:
            rooms = chat.room_index.largest(MAX_LISTED)
            self.info(f"{_counted(total, 'room')}:")
            self._list_rooms(rooms)
            if total > len(rooms):
                self.info(f"  ... and {total - len(rooms):,} more: type /rooms PATTERN "
                          "to narrow it down (the start of a name, or a pattern with *, "
                          "such as /rooms *chat*).")
        else:
            self._rooms_matching(arg, total)
        self.info("Type /join ROOM to enter one, or to create a new one.")

    def _list_rooms(self, rooms) -> None:
        visible = self.chat.moderation.visible
        for room in rooms:
            if not visible(room, self.user):
                continue
            if room is self.user.current:
                mine = " (current)"
            elif self.user in room:
                mine = " (joined)"
            else:
                mine = ""
            topic = f": {room.topic}" if room.topic else ""
            modes = room.moderation.modes(show_key=False)[0]
            modes = f" [{modes}]" if modes != "+n" else ""
            self.info(f"  {room.display} ({_plural(len(room), 'user')}){modes}{mine}{topic}")

    def _rooms_matching(self, arg: str, total: int) -> None:
        """
        List the rooms matching PATTERN C{arg}: a prefix costs two binary
        searches plus the rooms shown; a pattern with a C{*} inside examines
        at most L{MAX_ROOMS_SEARCHED} rooms whose names start with the part
        before the first C{*}.
        """
        pattern = clean_room_name(arg)
        shown = pattern if len(pattern) <= 40 else pattern[:40] + "..."
        literal = pattern.replace("*", "")
        if literal:
            problem = check_room_name(literal, len(literal))
            if problem:
                raise CommandUsageError(
                    f"{problem} Type /rooms PATTERN with the start of a name, or "
                    "with * for any letters, such as /rooms game or /rooms *chat*.")
        parts = [part for part in name_key(pattern).rstrip("*").split("*")]
        index = self.chat.room_index
        if len(parts) == 1:  # no * but at the end: the start of a name
            prefix = parts[0]
            count = index.names.count_starting_with(prefix)
            rooms = index.starting_with(prefix, MAX_LISTED)
            if not count:
                self.info(f"No room's name starts with {shown} ({_counted(total, 'room')} "
                          "in all). Type /rooms to see the largest rooms.")
                return
            if prefix:
                self.info(f"Rooms whose names start with {shown}: {count:,} of {total:,}")
            else:
                self.info(f"{_counted(total, 'room')}, by name:")
            self._list_rooms(rooms)
            if count > len(rooms):
                self.info(f"  ... and {count - len(rooms):,} more: type a longer PATTERN "
                          "to narrow it down.")
            return
        prefix = parts[0]
        candidates = index.names.count_starting_with(prefix)
        if len(literal) > self.chat.limits.max_room_name_length:
            keys: List[str] = []  # no room name is that long
            candidates = 0
        else:
            keys = index.names.starting_with(prefix, MAX_ROOMS_SEARCHED)
        match = _glob(parts + [""] if pattern.endswith("*") else parts)
        found = [key for key in keys if match(key)]
        cut = len(keys) < candidates
        if not found and not cut:
            self.info(f"No room's name matches {shown} ({_counted(total, 'room')} "
                      "in all). Type /rooms to see the largest rooms.")
            return
        where = f" whose names start with {prefix}" if prefix else ""
        among = (f"among the first {len(keys):,} of the {candidates:,} rooms{where}"
                 if cut else f"of {total:,}")
        self.info(f"Rooms whose names match {shown}: {len(found):,} {among}")
        self._list_rooms([index.get(key) for key in found[:MAX_LISTED]])
        if len(found) > MAX_LISTED:
            self.info(f"  ... and {len(found) - MAX_LISTED:,} more: type a longer "
                      "PATTERN to narrow it down.")
        if cut:
            self.info(f"  The search stopped after {len(keys):,} rooms: put more letters "
                      "before the first * to search them all.")

    def do_join(self, arg: str) -> None:
        """ROOM [KEY]
        Enter ROOM, creating it if it does not exist, and make it your current
        room: what you type goes there. Whoever creates a room is its
        operator. You stay in your other rooms, and lines from them are shown
        with the room's name. KEY is the room's password, if it has one
        (/mode +k).
        """
        name, _, key = arg.partition(" ")
        if not name or " " in key:
            raise self._usage("join")
        room, entered = self.chat.join(self.user, name, key or None)
        if entered:
            self.describe_room(room, joined=True)
        else:
            self.info(f"You are now talking in {room.display}.")

    def do_leave(self, arg: str) -> None:
        """[ROOM]
        Leave ROOM (or your current room). Rooms that become empty disappear,
        except the default room.
        """
        if " " in arg:
            raise self._usage("leave")
        before = self.user.current
        room = self.chat.leave(self.user, arg or None)
        self.send(f"<- You left {room.display}")
        current = self.user.current
        if current is None:
            self.info("You are not in any room now. Type /join ROOM to enter one.")
        elif before is room:
            self.info(f"You are now talking in {current.display}.")

    def do_msg(self, arg: str) -> None:
        """NAME TEXT
        Send TEXT privately to NAME; only they see it.
        """
        name, _, text = arg.partition(" ")
        if not name or not text.strip():
            raise self._usage("msg")
        target = self.chat.whisper(self.user, name, text)
        if isinstance(target, Deferred):  # offline: told once it is stored
            self.report(target.addCallback(lambda _: self.info(
                f"{name} is offline; they will get your message when they next log in.")))
        else:
            self.send(f"[private to {target.name}] <{self.user.name}> {sanitize(text)}")

    def do_me(self, arg: str) -> None:
        """TEXT
        Describe an action: /me waves shows "* NAME waves" to your room.
        """
        if not arg:
            raise self._usage("me")
        self.chat.say(self.user, arg, action=True)

    def do_nick(self, arg: str) -> None:
        """NEWNAME
        Change your name; the people in your rooms are told. A few renames in
        a row are fine; after that, one every few seconds.
        """
        if not arg or " " in arg:
            raise self._usage("nick")
        old = self.chat.rename(self.user, arg)
        self.info(f"You are now known as {self.user.name} (was {old}).")

    def do_topic(self, arg: str) -> None:
        """[TEXT]
        Show your current room's topic, or set it to TEXT (/topic - clears it).
        """
        if not arg:
            room = self.chat.current_room(self.user)
            if room.topic:
                by = f" (set by {room.topic_set_by})" if room.topic_set_by else ""
                self.info(f"The topic of {room.display} is: {room.topic}{by}")
            else:
                self.info(f"{room.display} has no topic. Type /topic TEXT to set one.")
            return
        self.chat.set_topic(self.user, "" if arg == "-" else arg)

    def do_say(self, arg: str) -> None:
        """TEXT
        Say TEXT to your current room exactly as typed, even if it starts
        with a slash.
        """
        if not arg:
            raise self._usage("say")
        self.chat.say(self.user, arg)

    def do_history(self, arg: str) -> None:
        """[NAME] [N]
        Show the last N lines said in your current room (default 50, at most
        500), with their times; with NAME, your private conversation with
        NAME instead (kept only for registered names: see /register). Every
        50 lines count as one line against flood control.
        """
        words = arg.split()
        peer: Optional[str] = None
        if words and not words[0].lstrip("+-").isnumeric():  # a number is N, not a NAME
            peer = words.pop(0)
        count = HISTORY_LINES
        if words:
            asked = parse_count(words[0]) if len(words) == 1 else None
            if asked is None or not 0 < asked <= MAX_HISTORY_LINES:
                raise CommandUsageError(
                    f"Usage: /history [NAME] [N], where N is a number of lines from 1 to "
                    f"{MAX_HISTORY_LINES}. Type /help history for more.")
            count = asked
        if peer is None:
            room: Optional[Room] = self.chat.current_room(self.user)
            self._require_accounts("Room history is")
        else:
            room = None
            self.require_private_history()
        limits = self.chat.limits
        cost = min(-(-count // limits.history_lines_per_charge), limits.flood_burst)
        wait = self.charge(cost - 1)  # the line itself has paid for one
        if wait:
            seconds = math.ceil(wait)
            raise CommandUsageError(
                f"Slow down: /history {count} counts as {cost} lines against flood "
                f"control. Try again in {_plural(seconds, 'second')}, or ask for fewer "
                "lines.")
        try:
            if room is not None:
                self.show_history(room, count, asked=True)
            else:
                assert peer is not None
                self.show_private_history(peer, count)
        except errors.Busy:
            self.refund(cost - 1)
            raise

    def do_register(self, arg: str) -> None:
        """PASSWORD
        Claim your current name: from then on, logging in with it asks for
        PASSWORD (6 characters or more, no spaces), nobody else can take it,
        and private messages sent while you are away wait for you.
        """
        if not arg or " " in arg:
            raise self._usage("register")
        accounts = self._require_accounts("Registering names is")
        user = self.user

        def done(_):
            user.registered = True
            self.info(f"The name {user.name} is now registered to you. Next time "
                      "you log in with it, you will be asked for this password.")

        self.report(accounts.register(user.key, user.name, arg, self.address, self)
                    .addCallback(done))

    def do_password(self, arg: str) -> None:
        """OLD NEW
        Change the password of your registered name from OLD to NEW.
        """
        old, _, new = arg.partition(" ")
        if not old or not new or " " in new:
            raise self._usage("password")
        accounts = self._require_accounts("Changing passwords is")
        d = accounts.change_password(self.user.key, old, new, self.address, self)
        self.report(d.addCallback(lambda _: self.info("Your password has been changed.")))

    def do_unregister(self, arg: str) -> None:
        """PASSWORD
        Give up your registered name: its password, the private messages
        waiting for it and the history of your private conversations are
        deleted, and you stay here as a guest. A founder of registered
        rooms hands them on first (/room transfer NAME, or /room drop).
        """
        if not arg or " " in arg:
            raise self._usage("unregister")
        accounts = self._require_accounts("Registering names is")
        user = self.user
        registry = self.chat.registry
        if registry.account(user) is None:
            raise errors.NotRegistered(
                f"The name {user.name} is not registered, so there is nothing to give up.")
        founded = registry.founded_by(user.key)
        if founded:
            raise CommandUsageError(
                f"You are the founder of {', '.join(room.display for room in founded)}: "
                "hand each on with /room transfer NAME, or end its registration with "
                "/room drop, then /unregister.")
        key, name = user.key, user.name

        def done(_):
            if user.key == key:
                user.registered = False
            registry.forget_account(key)  # and a room registered meanwhile
            self.info(f"The name {name} is no longer registered: you are a guest now, "
                      "and anyone may take it once you leave.")

        self.report(accounts.unregister(key, arg, self.address, self).addCallback(done))

    def require_private_history(self) -> None:
        """
        Raise unless this user's private conversations are kept: there is
        no store, or they are a guest (told how to register).
        """
        self._require_accounts("The history of private conversations is")
        if self.chat.account_of(self.user) is None:
            raise CommandUsageError(
                "Private conversations are kept only for registered names, and you "
                f"are a guest: type /register PASSWORD to register {self.user.name}; "
                "your conversations are kept from then on.")

    def _require_accounts(self, what: str):
        accounts = self.chat.accounts
        if accounts is None:
            raise errors.Unavailable(
                f"{what} not available: this server keeps no accounts or history.")
        return accounts

    def do_ping(self, arg: str) -> None:
        """[TOKEN]
        Answer at once with "PONG TOKEN" (for scripts and health checks).
        """
        self.send(f"PONG {arg}".rstrip())

    def do_quit(self, arg: str) -> None:
        """[MESSAGE]
        Leave the chat; your rooms see MESSAGE.
        """
        user = self.user
        self.chat.logout(user, arg)
        self.disconnect(f"Goodbye, {user.name}!")
