"""
The line protocol people use from telnet, netcat or a script.

One L{ChatProtocol} per connection turns bytes into lines (LF, CRLF, CR or
telnet's CR NUL, with telnet negotiation removed), lines into commands, and
chat events into readable lines.  The rules live in L{ChatFactory}.
"""

from typing import Optional

from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from . import errors, events
from .commands import ChatCommands, CommandUsageError
from .interfaces import IChatClient
from .telnet import TelnetFilter

#: Longest line a client may send, in bytes; longer ones are refused.
MAX_LINE_LENGTH = 2048

#: What every line the server sends ends with: CRLF suits telnet and
#: terminals alike.
EOL = b"\r\n"

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
}


def _line(text: str) -> bytes:
    return text.encode("utf-8") + EOL


def _room_tag(room, focused: bool) -> str:
    return "" if focused else f"[{room.display}] "


@implementer(IChatClient)
class ChatProtocol(ChatCommands, LineReceiver):
    """
    A person at a terminal, connected to the chat.

    States: I{naming} (until a valid name is given), I{chatting}, and
    I{closing} (after C{/quit}, a kick or a shutdown; input is ignored).

    Framing is done here rather than by L{LineReceiver.dataReceived},
    whose C{split} per line is quadratic in the number of lines in one
    read and which drops the connection silently on an over-long line.
    """

    MAX_LENGTH = MAX_LINE_LENGTH
    delimiter = b"\n"

    log = Logger()

    def __init__(self) -> None:
        self.user = None
        self.state = "naming"
        self.peer = "?"
        self._discarding = False

    # -- connection ---------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet the newcomer and ask for a name."""
        self.write = self.transport.write
        self._telnet = TelnetFilter(self.write)
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}"
        self.factory.client_connected(self)
        self.log.info("connection from {peer}", peer=self.peer)
        if self.factory.shutting_down:
            self.disconnect("The server is shutting down. Please come back later.")
            return
        self.info(f"Welcome to {self.factory.server_name}!")
        self.prompt_for_name()

    def connectionLost(self, reason=None) -> None:
        """Clean up exactly as for C{/quit}: no ghost names or members."""
        self.state = "closing"
        self.factory.client_disconnected(self, "connection closed")
        self.log.info("connection from {peer} closed", peer=self.peer)

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
        self.state = "closing"
        if reason:
            self.info(reason)
        self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection at once (a client that does not read)."""
        self.state = "closing"
        self.transport.abortConnection()

    # -- output -----------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one line of text to this user."""
        self.write(_line(text))

    def info(self, text: str) -> None:
        """Send a server notice."""
        self.write(_line(INFO + text))

    def error(self, text: str) -> None:
        """Send an error message (which should say what to type instead)."""
        self.write(_line(ERROR + text))

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
        data = self._telnet.feed(data)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r\0", b"\n")
            data = data.replace(b"\r", b"\n")
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if self.state == "closing":
                return
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
                continue
            self.lineReceived(line)
        if len(rest) > self.MAX_LENGTH:
            # A line with no end in sight: report it once, drop it up to its end.
            if not self._discarding:
                self.lineLengthExceeded(rest)
            self._discarding = True
            rest = b""
        self._buffer = rest

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse an over-long line; the connection stays open."""
        self.error(
            f"That line was too long (over {self.MAX_LENGTH} bytes) and was "
            "not sent. Please split it into shorter lines."
        )

    def lineReceived(self, line: bytes) -> None:
        """Act on one line; no input can escape as an exception."""
        text = line.decode("utf-8", "replace")
        try:
            if self.state == "chatting":
                self.chat_line(text)
            elif self.state == "naming":
                self.name_line(text)
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
        except errors.ChatError as e:
            self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
            self.prompt_for_name()
            return
        self.state = "chatting"
        self.welcome()

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
        if not text.strip():
            return
        if text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            self.run_command(name, arg.strip())
        else:
            self.factory.say(self.user, text)

    def run_command(self, name: str, arg: str) -> None:
        """Run command C{name}, turning refusals into messages."""
        handler = self.find_command(name)
        if handler is None:
            self.unknown_command(name)
            return
        try:
            handler(arg)
        except CommandUsageError as e:
            self.error(str(e))
        except errors.ChatError as e:
            self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())
