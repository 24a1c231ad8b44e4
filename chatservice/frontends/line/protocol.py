"""
The line protocol people use from telnet, netcat or a script.

One L{ChatProtocol} per connection turns bytes into lines (LF, CRLF, CR or
telnet's CR NUL, with telnet negotiation removed), lines into commands, and
chat events into readable lines (L{chatservice.frontends.line.render}).
The rules live in the core (L{chatservice.core.chat.Chat}).
"""

import time

from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from ...core import counters, errors, events
from ...core.interfaces import IChatClient
from ...core.limits import MAX_LINE_LENGTH
from ...core.text import name_key, sanitize
from ..session import DROP, KICK, WARN, ChatSession
from .commands import ChatCommands, CommandUsageError
from .moderation import MODERATION_HINTS
from .render import ERROR, INFO, LINE_RENDERER, day_stamp, history_text, timestamp
from .render import line as encode_line
from .telnet import TelnetFilter


_HINTS = {
    errors.InvalidName: "Please choose another name.",
    errors.NameTaken: "Please choose another name.",
    errors.InvalidRoomName: "Type /join ROOM with a name such as /join games.",
    errors.NoSuchUser: "Type /who to see who is online.",
    errors.NoSuchRoom: "Type /rooms to see the rooms.",
    errors.NotInRoom: "Type /join ROOM to enter a room.",
    errors.TooManyRooms: "Type /leave ROOM to leave one first.",
    errors.ServerRoomsFull: "Join an existing room instead: type /rooms to see them.",
    errors.NotRegistered: "Type /register PASSWORD to claim your name.",
    **MODERATION_HINTS,
}


@implementer(IChatClient)
class ChatProtocol(ChatSession, ChatCommands, LineReceiver):
    """
    A person at a terminal, connected to the chat.

    States: I{naming} (until a valid name is given), I{password} and
    I{checking} (a registered name was given: its password is typed, then
    checked), I{chatting}, and I{closing} (after C{/quit}, a kick or a
    shutdown; input is ignored).  Telnet clients are asked not to echo
    while the password is typed and checked.

    Framing is done here rather than by L{LineReceiver.dataReceived},
    whose C{split} per line is quadratic in the number of lines in one
    read and which drops the connection silently on an over-long line.
    Admission, the output cap and the connection log are the
    L{ChatSession}'s, shared with the other front ends.
    """

    MAX_LENGTH = MAX_LINE_LENGTH
    delimiter = b"\n"
    renderer = LINE_RENDERER
    frontend = "line"

    log = Logger()

    _telnet: TelnetFilter

    def __init__(self) -> None:
        self.user = None
        self._state = "naming"
        self._telnet = TelnetFilter(self._write_nothing)  # until connected
        self.peer = "?"
        self.address = None  # the remote host, for the bounds per address
        self._discarding = False
        self._cr_ended_last_read = False
        self._long_lines = 0
        self._timer = None
        self._pending_name = ""
        self._password_failures = 0
        self._retry = None

    @property
    def state(self) -> str:
        """Where the connection is: naming, password, checking, chatting or closing."""
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state
        self._telnet.hide_input(state in ("password", "checking"))

    # -- connection ---------------------------------------------------------

    def connectionMade(self) -> None:
        """Check the connection limits, then greet and ask for a name."""
        chat = self.chat = self.factory.chat
        limits = chat.limits
        self.clock = chat.clock
        self._telnet = TelnetFilter(self.transport.write)
        self.on_writer_changed = self._telnet_replies_to
        self.MAX_LENGTH = limits.max_line_length
        if not self.open_session():
            return
        self._telnet.reply = self.write  # in order with everything else
        if limits.login_timeout:
            self._timer = self.clock.callLater(limits.login_timeout, self._timed_out)
        self.info(f"Welcome to {chat.server_name}!")
        self.prompt_for_name()

    @staticmethod
    def _write_nothing(data: bytes) -> None:
        pass

    def _telnet_replies_to(self, write) -> None:
        self._telnet.reply = write

    def connectionLost(self, reason=None) -> None:
        """Clean up exactly as for C{/quit}: no ghost names or members."""
        self.state = "closing"
        for call in (self._timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry = None
        self.close_session()

    # -- IChatClient ---------------------------------------------------------

    def deliver(self, event) -> None:
        """Show an event addressed to this user alone."""
        self.settle()
        if getattr(event, "room", None) is None:
            self.write(encode_line(self.renderer.personal(event)))
        else:  # a room's announcement, tagged as in the room
            current = self.user.current if self.user is not None else None
            focused = current is not None and current.name == event.room
            self.write(self.renderer.encode(event, focused))
            if type(event) is events.Kicked and self.user is not None:
                where = (f"You are now talking in {current.display}." if current is not None
                         else "You are not in any room now.")
                self.info(f"{where} Type /join #{event.room} to go back, if its "
                          "operators let you.")

    def disconnect(self, reason: str) -> None:
        """Tell the user C{reason} and close the connection once it is sent."""
        if self.state == "closing":
            return
        self.settle()
        if reason:
            self.info(reason)
        self.state = "closing"
        self.close_connection()

    # -- output -----------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one line of text to this user."""
        self.settle()
        self.write(encode_line(text))

    def info(self, text: str) -> None:
        """Send a server notice."""
        self.settle()
        self.write(encode_line(INFO + text))

    def error(self, text: str) -> None:
        """Send an error message (which should say what to type instead)."""
        self.settle()
        self.write(encode_line(ERROR + text))

    def prompt_for_name(self) -> None:
        """Ask for a name."""
        self.send("What's your name?")

    # -- input ------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Split C{data} into lines, tolerating every line ending terminals and
        scripts use, and refusing over-long lines without dropping the
        connection.
        """
        with self.chat.outbox.batch():
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        data = self._telnet.feed(data)
        if self._cr_ended_last_read:
            # the LF or NUL of a CRLF / CR NUL split across two reads
            self._cr_ended_last_read = False
            if data[:1] in (b"\n", b"\0"):
                data = data[1:]
        if b"\r" in data:
            self._cr_ended_last_read = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r\0", b"\n")
            data = data.replace(b"\r", b"\n")
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\n")
        rest = lines.pop()
        limits = self.chat.limits
        flood_rate = limits.flood_rate
        for line in lines:
            if self.state == "closing":
                return
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
                continue
            if flood_rate and not self._charge_line(limits):
                continue
            self.lineReceived(line)
        if len(rest) > self.MAX_LENGTH and self.state != "closing":
            # A line with no end in sight: report it once, drop it up to its end.
            if not self._discarding:
                self.lineLengthExceeded(rest)
            self._discarding = True
            rest = b""
        self._buffer = rest

    def _charge_line(self, limits, cost: float = 1.0) -> bool:
        """
        Take a line (costing C{cost} lines) from flood control; return
        whether it may go through.  A flood is warned about once, and a
        flood that goes on past C{flood_kick} dropped lines disconnects.
        """
        verdict = self._flood.charge(cost)
        if verdict == WARN:
            self.error(
                f"Slow down: you are sending more than {limits.flood_rate:g} lines "
                "a second. Lines sent too fast are dropped."
            )
        elif verdict == KICK:
            self.log.info("disconnecting {peer} for flooding", peer=self.peer)
            self.chat.count_disconnect(counters.FLOOD)
            if self.user is not None:
                self.chat.logout(self.user, "flooding")
            self.disconnect("You were disconnected for flooding.")
        return verdict not in (WARN, DROP, KICK)

    def charge(self, lines: int) -> float:
        """
        Take C{lines} more lines from flood control, for a command that
        costs more than the line that asked for it.  Return 0 if they were
        taken, else the seconds until they would be (and take nothing: the
        command is refused, not dropped as a flood).
        """
        if not self.chat.limits.flood_rate:
            return 0.0
        return self._flood.take_extra(lines)

    def refund(self, lines: int) -> None:
        """Give back C{lines} taken by L{charge} for a command that was refused."""
        if self.chat.limits.flood_rate:
            self._flood.refund(lines)

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse an over-long line; the connection stays open unless this
        keeps happening."""
        if self.too_many_long_lines():
            return
        self.error(
            f"That line was too long (over {self.MAX_LENGTH} bytes) and was "
            "not sent. Please split it into shorter lines."
        )

    def lineReceived(self, line: bytes) -> None:
        """Act on one line; no input can escape as an exception."""
        text = line.decode("utf-8", "replace")
        if self.state == "chatting":
            self.user.last_active = self.clock.seconds()
        try:
            if self.state == "chatting":
                self.chat_line(text)
            elif self.state == "naming":
                self.name_line(text)
            elif self.state == "password":
                self.password_line(text)
            # "checking": a password is being checked; input waits for nothing
        except CommandUsageError as e:
            self.error(str(e))
        except errors.ChatError as e:
            self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
        except Exception:
            self.log.failure("error handling a line from {peer}", peer=self.peer)
            self.error("Sorry, something went wrong on the server; it has been logged.")

    def name_line(self, text: str) -> None:
        """Handle a line typed at the name prompt."""
        text = text.strip()
        if not text:
            return
        word, _, rest = text.partition(" ")
        command = word.lower().lstrip("/")
        if command in ("quit", "logout", "exit"):
            self.disconnect("Goodbye!")
            return
        if command == "help":
            self.info("Type the name you want to be known by, for example: alice")
            self.info("(letters, digits, '_' and '-'; or type /quit to leave)")
            return
        if command == "login" and (rest.strip() or word.startswith("/")):
            text = rest.strip()
            if not text:
                self.error("Usage: login NAME. What's your name?")
                return
        elif word.startswith("/"):
            self.error("Please choose a name first. What's your name?")
            return
        try:
            self.user = self.chat.login(self, text)
        except errors.NeedsPassword:
            self._pending_name = self.chat.validate_name(text)
            self.state = "password"
            self.send(f"The name {self._pending_name} is registered. Password "
                      "(or /back to choose another name):")
            return
        except errors.ChatError as e:
            self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
            self.prompt_for_name()
            return
        self._logged_in()

    def _logged_in(self) -> None:
        self.state = "chatting"
        self._start_idle_timer()
        self.welcome()
        if self.user.registered:
            self.report(self.chat.take_offline(self.user).addCallback(self._show_offline))

    def password_line(self, text: str) -> None:
        """Handle the password typed for a registered name."""
        password = text.strip()
        command = password.lower()
        if command in ("/quit", "/exit", "/logout"):
            self.disconnect("Goodbye!")
            return
        if command == "/back":
            self.state = "naming"
            self.prompt_for_name()
            return
        if not password:
            return
        self.state = "checking"
        key = name_key(self._pending_name)
        self.report(self.chat.accounts.authenticate(key, password, self.address, self)
                    .addCallbacks(self.password_checked, self._check_refused))

    def _check_refused(self, failure) -> None:
        """Too many checks wait: ask for the password again (no wrong try counted)."""
        failure.trap(errors.TooManyChecks)
        if self.state != "checking":
            return
        self.state = "password"
        self.error(f"{failure.value} Password (or /back to choose another name):")

    def login_refused(self, error: errors.ChatError) -> None:
        """Say why the login was refused (with what to do), and ask for a name again."""
        self.error(f"{error} {_HINTS.get(type(error), '')}".rstrip())
        self.prompt_for_name()

    def ask_password_again(self) -> None:
        """The password was wrong: ask again."""
        self.error("Wrong password. Try again (or /back to choose another name):")

    def report(self, d):
        """
        Turn the failure of Deferred C{d} (from a command that waits for the
        database or a password check) into an error line; return C{d}.
        """
        def failed(failure):
            if self.state == "closing":
                return None
            if failure.check(CommandUsageError):
                self.error(str(failure.value))
            elif failure.check(errors.ChatError):
                e = failure.value
                self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
            else:
                self.log.failure("error for {peer}", failure, peer=self.peer)
                self.error("Sorry, something went wrong on the server; it has been logged.")
            if self.state == "checking":
                self.state = "naming"
                self.prompt_for_name()
            return None

        return d.addErrback(failed)

    def _show_offline(self, messages) -> None:
        if not messages or self.state == "closing":
            return
        count = len(messages)
        self.info(f"{count} message{'s' if count != 1 else ''} while you were away:")
        now = self.clock.seconds()
        for message in messages:
            stamp = timestamp(message.when, now)
            if message.action:
                self.send(f"[private {stamp}] * {message.sender} {message.text}")
            else:
                self.send(f"[private {stamp}] <{message.sender}> {message.text}")

    def show_history(self, room, count: int, asked: bool = False) -> None:
        """
        Show the last C{count} stored lines of C{room}, marked as history
        with their times (C{asked}: the user typed /history, so say so even
        when there is none; a read of the database is then bounded, see
        L{ChatFactory.history}).  The lines go out in one write.
        """
        def show(lines):
            if self.state == "closing":
                return
            if not lines:
                if asked:
                    self.info(f"{room.display} has no history yet.")
                return
            today = time.localtime(self.clock.seconds())[:3]
            count = len(lines)
            tag = room.display
            out = [encode_line(f"{INFO}History of {tag}, last "
                         f"{count} line{'s' if count != 1 else ''}:")]
            stamps = {}
            for line in lines:
                second = int(line.when)
                stamp = stamps.get(second)
                if stamp is None:
                    stamp = stamps[second] = day_stamp(second, today)
                out.append(encode_line(f"[{tag} {stamp}] " + history_text(line)))
            out.append(encode_line(f"{INFO}End of history of {tag}."))
            self.settle()
            self.write(b"".join(out))

        d = self.chat.history(room, count, self.user if asked else None)
        self.report(d.addCallback(show))

    def show_private_history(self, raw_peer: str, count: int) -> None:
        """
        Show the last C{count} lines of this user's private conversation
        with C{raw_peer}, marked C{[private TIME]} as offline messages are,
        in one write (raises L{errors.Busy} as L{Chat.history} does).
        """
        peer = sanitize(raw_peer)

        def show(lines):
            if self.state == "closing":
                return
            if not lines:
                self.info(f"You have no stored conversation with {peer}.")
                return
            today = time.localtime(self.clock.seconds())[:3]
            count = len(lines)
            out = [encode_line(f"{INFO}History of your conversation with {peer}, last "
                               f"{count} line{'s' if count != 1 else ''}:")]
            for line in lines:
                out.append(encode_line(f"[private {day_stamp(line.when, today)}] "
                                       + history_text(line)))
            out.append(encode_line(f"{INFO}End of your conversation with {peer}."))
            self.settle()
            self.write(b"".join(out))

        d = self.chat.private_history(self.user, raw_peer, count)
        self.report(d.addCallback(show))

    def welcome(self) -> None:
        """Greet a user who just logged in and show where they are."""
        self.info(f"Hello {self.user.name}, welcome to {self.chat.server_name}!")
        for line in self.chat.motd.splitlines():
            self.info(line)
        self.info("Type /help for the commands; anything else you type is said to your room.")
        if self.user.current is not None:
            self.describe_room(self.user.current, joined=True)

    def chat_line(self, text: str) -> None:
        """Handle a line from a logged-in user: a command, or text to say."""
        if text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            self.run_command(name, arg.strip())
        else:
            try:
                self.chat.say(self.user, text)
            except errors.InvalidText:
                pass  # stray control bytes alone are not a message

    def run_command(self, name: str, arg: str) -> None:
        """Run command C{name}; refusals it raises become error lines."""
        handler = self.find_command(name)
        if handler is None:
            self.unknown_command(name)
        else:
            handler(arg)
