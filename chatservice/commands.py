"""
The slash commands of the line protocol.

Each command is a C{do_<name>} method of L{ChatCommands}; its docstring is
its C{/help} text: the first line gives the arguments, the rest explains it.
The methods parse arguments and word replies; the rules are the factory's.
"""

import difflib
import inspect
import math
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from twisted.internet.defer import Deferred

from . import errors
from .text import sanitize

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

#: Most entries shown by a listing (/who, /look, /rooms) before "and N more".
MAX_LISTED = 100


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


class ChatCommands:
    """
    The command table, mixed into the line protocol.

    Expects C{self.factory}, C{self.user}, the output methods C{send},
    C{info} and C{error}, and the flood-control methods C{charge} and
    C{refund} of L{chatservice.protocol.ChatProtocol}.
    """

    # -- the table ----------------------------------------------------------

    @classmethod
    def command_names(cls) -> List[str]:
        """Return the names of all commands, in the order /help lists them."""
        return [name[3:] for name in vars(ChatCommands) if name.startswith("do_")]

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
            names = (u.name for u in room.members.values() if u is not self.user)
            self.info(f"Here with you: {_names(names, others)} ({_plural(len(room), 'user')})")
        else:
            self.info(f"You are alone in {room.display}.")
        if joined:
            self.show_history(room, self.factory.replay_lines)

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

    def do_who(self, arg: str) -> None:
        """[NAME]
        List everyone online and the rooms they are in, or show one user.
        """
        factory = self.factory
        if arg:
            user = factory.find_user(arg)
            rooms = ", ".join(r.display for r in user.rooms.values()) or "no room"
            self.info(f"{user.name} is online, in {rooms}.")
            return
        users = sorted(factory.users.values(), key=lambda u: u.key)
        self.info(f"{_plural(len(users), 'user')} online:")
        for user in users[:MAX_LISTED]:
            rooms = ", ".join(r.display for r in user.rooms.values()) or "no room"
            self.info(f"  {user.name} ({rooms})")
        if len(users) > MAX_LISTED:
            self.info(f"  ... and {len(users) - MAX_LISTED} more. Type /who NAME to look one up.")

    def do_look(self, arg: str) -> None:
        """
        Show your current room: its topic and who is in it.
        """
        room = self.factory.current_room(self.user)
        names = (u.name for u in room.members.values())
        self.info(f"You are in {room.display}" + (f". Topic: {room.topic}" if room.topic else "."))
        self.info(f"{_plural(len(room), 'user')} here: {_names(names, len(room))}")

    def do_rooms(self, arg: str) -> None:
        """
        List the rooms with how many people are in each, and their topics.
        """
        rooms = sorted(self.factory.rooms.values(), key=lambda r: (-len(r), r.key))
        self.info(f"{_plural(len(rooms), 'room')}:")
        for room in rooms[:MAX_LISTED]:
            if room is self.user.current:
                mine = " (current)"
            elif self.user in room:
                mine = " (joined)"
            else:
                mine = ""
            topic = f": {room.topic}" if room.topic else ""
            self.info(f"  {room.display} ({_plural(len(room), 'user')}){mine}{topic}")
        if len(rooms) > MAX_LISTED:
            self.info(f"  ... and {len(rooms) - MAX_LISTED} more.")
        self.info("Type /join ROOM to enter one, or to create a new one.")

    def do_join(self, arg: str) -> None:
        """ROOM
        Enter ROOM, creating it if it does not exist, and make it your current
        room: what you type goes there. You stay in your other rooms, and
        lines from them are shown with the room's name.
        """
        if not arg or " " in arg:
            raise self._usage("join")
        room, entered = self.factory.join(self.user, arg)
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
        room = self.factory.leave(self.user, arg or None)
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
        target = self.factory.whisper(self.user, name, text)
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
        self.factory.say(self.user, arg, action=True)

    def do_nick(self, arg: str) -> None:
        """NEWNAME
        Change your name; the people in your rooms are told.
        """
        if not arg or " " in arg:
            raise self._usage("nick")
        old = self.factory.rename(self.user, arg)
        self.info(f"You are now known as {self.user.name} (was {old}).")

    def do_topic(self, arg: str) -> None:
        """[TEXT]
        Show your current room's topic, or set it to TEXT (/topic - clears it).
        """
        if not arg:
            room = self.factory.current_room(self.user)
            if room.topic:
                by = f" (set by {room.topic_set_by})" if room.topic_set_by else ""
                self.info(f"The topic of {room.display} is: {room.topic}{by}")
            else:
                self.info(f"{room.display} has no topic. Type /topic TEXT to set one.")
            return
        self.factory.set_topic(self.user, "" if arg == "-" else arg)

    def do_say(self, arg: str) -> None:
        """TEXT
        Say TEXT to your current room exactly as typed, even if it starts
        with a slash.
        """
        if not arg:
            raise self._usage("say")
        self.factory.say(self.user, arg)

    def do_history(self, arg: str) -> None:
        """[N]
        Show the last N lines said in your current room (default 50, at most
        500), with their times. Every 50 lines count as one line against
        flood control.
        """
        count = HISTORY_LINES
        if arg:
            count = parse_count(arg)
            if count is None or not 0 < count <= MAX_HISTORY_LINES:
                raise CommandUsageError(
                    f"Usage: /history [N], where N is a number of lines from 1 to "
                    f"{MAX_HISTORY_LINES}. Type /help history for more.")
        room = self.factory.current_room(self.user)
        self._require_accounts("Room history is")
        limits = self.factory.limits
        cost = min(-(-count // limits.history_lines_per_charge), limits.flood_burst)
        wait = self.charge(cost - 1)  # the line itself has paid for one
        if wait:
            seconds = math.ceil(wait)
            raise CommandUsageError(
                f"Slow down: /history {count} counts as {cost} lines against flood "
                f"control. Try again in {_plural(seconds, 'second')}, or ask for fewer "
                "lines.")
        try:
            self.show_history(room, count, asked=True)
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

    def _require_accounts(self, what: str):
        accounts = self.factory.accounts
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
        self.factory.logout(user, arg)
        self.disconnect(f"Goodbye, {user.name}!")
