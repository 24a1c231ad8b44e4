"""
The line protocol people use from telnet, netcat or a script.

One L{ChatProtocol} per connection turns bytes into lines (LF, CRLF, CR or
telnet's CR NUL, with telnet negotiation removed), lines into commands, and
chat events into readable lines.  The rules live in L{ChatFactory}.
"""

import time

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from . import errors, events
from .commands import ChatCommands, CommandUsageError
from .interfaces import IChatClient
from .limits import MAX_LINE_LENGTH
from .telnet import TelnetFilter
from .text import name_key

#: What every line the server sends ends with: CRLF suits telnet and
#: terminals alike.
EOL = b"\r\n"

#: Wrong passwords for a registered name before the connection is closed.
MAX_PASSWORD_TRIES = 3
#: Seconds between a wrong password and the next try.
PASSWORD_RETRY_DELAY = 2.0

# Server notices and errors are marked so nobody can pass text off as them:
# a user's own text always starts with "<name>", "* name" or a room tag.
INFO = "-- "
ERROR = "!! "

_HINTS = {
    errors.InvalidName: "Please choose another name.",
    errors.NameTaken: "Please choose another name.",
    errors.InvalidRoomName: "Type /join ROOM with a name such as /join games.",
    errors.NoSuchUser: "Type /who to see who is online.",
    errors.NoSuchRoom: "Type /rooms to see the rooms.",
    errors.NotInRoom: "Type /join ROOM to enter a room.",
    errors.TooManyRooms: "Type /leave ROOM to leave one first.",
    errors.NotRegistered: "Type /register PASSWORD to claim your name.",
}


def _line(text: str) -> bytes:
    return text.encode("utf-8") + EOL


def _some(names, shown: int = 5) -> str:
    """C{alice, bob and 3 others}."""
    if len(names) <= shown:
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return f"{', '.join(names[:shown])} and {len(names) - shown} others"


def timestamp(when: float, now: float) -> str:
    """C{14:05} for a time today (server time), else C{2026-11-20 14:05}."""
    moment = time.localtime(when)
    if time.localtime(now)[:3] == moment[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def _stamp(when: float, today: tuple) -> str:
    """L{timestamp}, given today's C{(year, month, day)} in local time."""
    moment = time.localtime(when)
    if moment[:3] == today:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def _history_text(line) -> str:
    if line.kind == "act":
        return f"* {line.sender} {line.text}"
    if line.kind == "topic":
        return f"{INFO}{line.sender} set the topic: {line.text}" if line.text else \
            f"{INFO}{line.sender} cleared the topic"
    return f"<{line.sender}> {line.text}"


def _room_tag(room, focused: bool) -> str:
    return "" if focused else f"[{room.display}] "


def pending_output(transport) -> int:
    """
    Return how many bytes C{transport} holds that the peer has not taken
    yet, for the transports that expose it (TCP and UNIX sockets), else 0.
    """
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


@implementer(IChatClient, IPushProducer)
class ChatProtocol(ChatCommands, LineReceiver):
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

    The protocol registers itself as the transport's streaming producer
    only to learn when the client stops reading: while the transport says
    "pause", every write is measured against the output cap.
    """

    MAX_LENGTH = MAX_LINE_LENGTH
    delimiter = b"\n"

    log = Logger()

    _telnet = None

    def __init__(self) -> None:
        self.user = None
        self._state = "naming"
        self.peer = "?"
        self.address = None  # the remote host, for the bounds per address
        self._discarding = False
        self._cr_ended_last_read = False
        self._long_lines = 0
        self._flood_dropped = 0
        self._timer = None
        self._producing = False
        self._slow_since_pause = 0
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
        if self._telnet is not None:
            self._telnet.hide_input(state in ("password", "checking"))

    # -- connection ---------------------------------------------------------

    def connectionMade(self) -> None:
        """Check the connection limits, then greet and ask for a name."""
        factory = self.factory
        limits = factory.limits
        self.clock = factory.clock
        self.write = self.transport.write
        self._telnet = TelnetFilter(self.write)
        self.MAX_LENGTH = limits.max_line_length
        self._tokens = float(limits.flood_burst)
        self._refilled = self.clock.seconds()
        peer = self.transport.getPeer()
        host = getattr(peer, "host", None)
        self.address = host
        self.peer = f"{host}:{getattr(peer, 'port', '')}" if host else str(peer)
        refusal = factory.admit(self, host)
        if refusal is not None:
            self.disconnect(refusal)
            return
        self.log.info("connection from {peer}", peer=self.peer)
        if limits.max_output:
            self._producing = True
            self.transport.registerProducer(self, True)
        if hasattr(self.transport, "setTcpKeepAlive"):
            self.transport.setTcpKeepAlive(True)  # notice half-open peers
            # A chat line should leave at once, not wait for the peer's
            # delayed ACK (Nagle): that cost 40 ms at p50 in the latency
            # benchmark.  Writes are already gathered, one per read.
            self.transport.setTcpNoDelay(True)
        if limits.login_timeout:
            self._timer = self.clock.callLater(limits.login_timeout, self._timed_out)
        self.info(f"Welcome to {factory.server_name}!")
        self.prompt_for_name()

    def connectionLost(self, reason=None) -> None:
        """Clean up exactly as for C{/quit}: no ghost names or members."""
        self.state = "closing"
        for call in (self._timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry = None
        self.factory.client_disconnected(self, "connection closed")
        self.log.info("connection from {peer} closed", peer=self.peer)

    def _timed_out(self) -> None:
        # One timer per connection: the login deadline, then (if set) the
        # idle deadline, re-armed lazily instead of reset on every line.
        self._timer = None
        if self.state in ("naming", "password", "checking"):
            self.log.info("{peer} took too long to log in", peer=self.peer)
            self.disconnect("You took too long to choose a name. Goodbye!")
            return
        idle = self.factory.limits.idle_timeout
        if self.state != "chatting" or not idle:
            return
        remaining = self.user.last_active + idle - self.clock.seconds()
        if remaining > 0:
            self._timer = self.clock.callLater(remaining, self._timed_out)
            return
        self.log.info("{name} was idle too long", name=self.user.name)
        self.factory.logout(self.user, "idle too long")
        self.disconnect(f"You were idle for more than {idle:g} seconds. Goodbye!")

    # -- IPushProducer: learning that the client stopped reading ---------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: the client is not keeping up.  From
        now on, writes go through L{_write_while_backed_up}, which drops the
        client if its pending output passes the cap.
        """
        if self.state == "closing":
            return
        self._slow_since_pause = 0
        self._swap_writer(self._write_while_backed_up)

    def resumeProducing(self) -> None:
        """The client caught up: write straight to the transport again."""
        if self.write != self.transport.write and self.state != "closing":
            self._swap_writer(self.transport.write)

    def stopProducing(self) -> None:
        """The connection is going away; nothing to do."""

    def _swap_writer(self, write) -> None:
        old, self.write = self.write, write
        self._telnet.reply = write
        if self.user is not None:
            for room in self.user.rooms.values():
                room.replace_writer(self.user, old)

    def _write_while_backed_up(self, data: bytes) -> None:
        if self.state == "closing":
            return
        self.transport.write(data)
        self._slow_since_pause += len(data)
        pending = pending_output(self.transport) or self._slow_since_pause
        if pending > self.factory.limits.max_output:
            self.drop_slow_reader(pending)

    def drop_slow_reader(self, pending: int) -> None:
        """Abort a client whose unread output passed the cap."""
        cap = self.factory.limits.max_output
        self.log.info("dropping {peer}: {pending} bytes unread (cap {cap})",
                      peer=self.peer, pending=pending, cap=cap)
        if self.user is not None:
            self.factory.logout(self.user, "not reading: output buffer full")
        self.abort()

    # -- IChatClient ---------------------------------------------------------

    @staticmethod
    def encode_room_event(event, focused: bool) -> bytes:
        """Return room event C{event} as a line for one room member."""
        kind = type(event)
        room = event.room
        if kind is events.Said:
            return _line(f"{_room_tag(room, focused)}<{event.sender.name}> {event.text}")
        if kind is events.Acted:
            return _line(f"{_room_tag(room, focused)}* {event.sender.name} {event.text}")
        if kind is events.Joined:
            return _line(f"-> {event.user.name} joined {room.display}")
        if kind is events.Left:
            reason = f" ({event.reason})" if event.reason else ""
            return _line(f"<- {event.user.name} left {room.display}{reason}")
        if kind is events.Presence:
            text = ""
            if event.joined:
                text += f"-> {_some(event.joined)} joined {room.display}\r\n"
            if event.left:
                text += f"<- {_some(event.left)} left {room.display}\r\n"
            return text.encode("utf-8")
        if kind is events.TopicChanged:
            who = event.user.name if event.user is not None else "The server"
            if event.topic:
                return _line(f"{INFO}{who} set the topic of {room.display}: {event.topic}")
            return _line(f"{INFO}{who} cleared the topic of {room.display}")
        if kind is events.RoomClosed:
            reason = f": {event.reason}" if event.reason else ""
            return _line(f"{INFO}{room.display} was closed by the server{reason}")
        if kind is events.Announcement:
            return _line(f"{_room_tag(room, focused)}{INFO}Announcement: {event.text}")
        raise TypeError(f"not a room event: {event!r}")

    def deliver(self, event) -> None:
        """Show an event addressed to this user alone."""
        self._settle()
        kind = type(event)
        if kind is events.Private:
            if event.action:
                self.send(f"[private] * {event.sender.name} {event.text}")
            else:
                self.send(f"[private] <{event.sender.name}> {event.text}")
        elif kind is events.Renamed:
            self.info(f"{event.old_name} is now known as {event.user.name}")
        elif kind is events.Quit:
            reason = f" ({event.reason})" if event.reason else ""
            self.send(f"<- {event.user.name} quit{reason}")
        elif kind is events.Announcement:
            if event.room is not None:
                self.write(self.encode_room_event(event, event.room is self.user.current))
            else:
                self.info(f"Announcement: {event.text}")
        else:
            self.write(self.encode_room_event(event, event.room is self.user.current))

    def disconnect(self, reason: str) -> None:
        """Tell the user C{reason} and close the connection once it is sent."""
        if self.state == "closing":
            return
        self._settle()
        if reason:
            self.info(reason)
        self.state = "closing"
        if self._producing:
            # A registered, paused producer keeps a TCP transport from ever
            # finishing loseConnection.
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection at once (a client that does not read)."""
        self.state = "closing"
        self.transport.abortConnection()

    # -- output -----------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one line of text to this user."""
        self._settle()
        self.write(_line(text))

    def info(self, text: str) -> None:
        """Send a server notice."""
        self._settle()
        self.write(_line(INFO + text))

    def error(self, text: str) -> None:
        """Send an error message (which should say what to type instead)."""
        self._settle()
        self.write(_line(ERROR + text))

    def _settle(self) -> None:
        # Room events gathered from the current read go out before anything
        # written directly, so every user sees things in the order they
        # happened.
        outbox = self.factory.outbox
        if outbox.room is not None:
            outbox.flush()

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
        outbox = self.factory.outbox
        if outbox.gathering:  # re-entered: the outer call flushes
            self._receive(data)
            return
        outbox.gathering = True
        try:
            self._receive(data)
        finally:
            outbox.gathering = False
            outbox.flush()

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
        limits = self.factory.limits
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

    def _charge_line(self, limits) -> bool:
        """
        Take a line from the flood-control token bucket; return whether the
        line may go through.  A flood is warned about once, and a flood that
        goes on past C{flood_kick} dropped lines disconnects.
        """
        now = self.clock.seconds()
        tokens = self._tokens + (now - self._refilled) * limits.flood_rate
        if tokens >= limits.flood_burst:
            tokens = float(limits.flood_burst)
            self._flood_dropped = 0  # a full bucket ends a flood episode
        self._refilled = now
        if tokens >= 1:
            self._tokens = tokens - 1
            return True
        self._tokens = tokens
        self._flood_dropped += 1
        if self._flood_dropped == 1:
            self.error(
                f"Slow down: you are sending more than {limits.flood_rate:g} lines "
                "a second. Lines sent too fast are dropped."
            )
        elif self._flood_dropped > limits.flood_kick:
            self.log.info("disconnecting {peer} for flooding", peer=self.peer)
            if self.user is not None:
                self.factory.logout(self.user, "flooding")
            self.disconnect("You were disconnected for flooding.")
        return False

    def charge(self, lines: int) -> float:
        """
        Take C{lines} more lines from the flood-control bucket, for a
        command that costs more than the line that asked for it.  Return 0
        if they were taken, else the seconds until the bucket holds them
        (and take nothing: the command is refused, not dropped as a flood).
        """
        limits = self.factory.limits
        if not limits.flood_rate or lines <= 0:
            return 0.0
        now = self.clock.seconds()
        tokens = min(self._tokens + (now - self._refilled) * limits.flood_rate,
                     float(limits.flood_burst))
        self._refilled = now
        if tokens >= lines:
            self._tokens = tokens - lines
            return 0.0
        self._tokens = tokens
        return (lines - tokens) / limits.flood_rate

    def refund(self, lines: int) -> None:
        """Give back C{lines} taken by L{charge} for a command that was refused."""
        limits = self.factory.limits
        if limits.flood_rate and lines > 0:
            self._tokens = min(self._tokens + lines, float(limits.flood_burst))

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse an over-long line; the connection stays open unless this
        keeps happening."""
        self._long_lines += 1
        limit = self.factory.limits.max_long_lines
        if limit and self._long_lines > limit:
            self.log.info("disconnecting {peer}: too many over-long lines", peer=self.peer)
            if self.user is not None:
                self.factory.logout(self.user, "too many over-long lines")
            self.disconnect("You were disconnected for sending too many over-long lines.")
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
            self.user = self.factory.login(self, text)
        except errors.NeedsPassword:
            self._pending_name = self.factory.validate_name(text)
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
            self.report(self.factory.take_offline(self.user).addCallback(self._show_offline))

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
        self.report(self.factory.accounts.authenticate(key, password, self.address, self)
                    .addCallbacks(self._password_checked, self._check_refused))

    def _check_refused(self, failure) -> None:
        """Too many checks wait: ask for the password again (no wrong try counted)."""
        failure.trap(errors.TooManyChecks)
        if self.state != "checking":
            return
        self.state = "password"
        self.error(f"{failure.value} Password (or /back to choose another name):")

    def _password_checked(self, registered_name) -> None:
        if self.state != "checking":  # the connection closed meanwhile
            return
        if registered_name is not None:
            try:
                self.user = self.factory.login(self, registered_name, authenticated=True)
            except errors.ChatError as e:
                self.state = "naming"
                self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
                self.prompt_for_name()
                return
            self._logged_in()
            return
        self._password_failures += 1
        self.log.info("wrong password for {name} from {peer}",
                      name=self._pending_name, peer=self.peer)
        if self._password_failures >= MAX_PASSWORD_TRIES:
            self.disconnect("Too many wrong passwords. Goodbye!")
            return
        self._retry = self.clock.callLater(PASSWORD_RETRY_DELAY, self._ask_again)

    def _ask_again(self) -> None:
        self._retry = None
        if self.state == "checking":
            self.state = "password"
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
            out = [_line(f"{INFO}History of {tag}, last "
                         f"{count} line{'s' if count != 1 else ''}:")]
            stamps: dict = {}
            for line in lines:
                second = int(line.when)
                stamp = stamps.get(second)
                if stamp is None:
                    stamp = stamps[second] = _stamp(second, today)
                out.append(_line(f"[{tag} {stamp}] " + _history_text(line)))
            out.append(_line(f"{INFO}End of history of {tag}."))
            self._settle()
            self.write(b"".join(out))

        d = self.factory.history(room, count, self.user if asked else None)
        self.report(d.addCallback(show))

    def _start_idle_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        idle = self.factory.limits.idle_timeout
        if idle:
            self._timer = self.clock.callLater(idle, self._timed_out)

    def welcome(self) -> None:
        """Greet a user who just logged in and show where they are."""
        self.info(f"Hello {self.user.name}, welcome to {self.factory.server_name}!")
        for line in self.factory.motd.splitlines():
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
                self.factory.say(self.user, text)
            except errors.InvalidText:
                pass  # stray control bytes alone are not a message

    def run_command(self, name: str, arg: str) -> None:
        """Run command C{name}; refusals it raises become error lines."""
        handler = self.find_command(name)
        if handler is None:
            self.unknown_command(name)
        else:
            handler(arg)
