"""
The web front end's connections: L{WebSocketChat}, the autobahn protocol
of one WebSocket at C{/ws}, and L{WebSession}, the person behind it as the
chat's core sees them (an L{IChatClient}).

The protocol does the WebSocket's part (the Origin check, frames, closing);
the session everything else, as the line and IRC front ends do: admission,
flood control, the output cap and the timeouts (L{ChatSession}), the login
with the password check of registered names, and the slash commands of the
line protocol (L{ChatCommands}: C{/commands} typed in the page work exactly
as on telnet, their replies arriving as C{info} and C{error} messages).
The JSON messages are handled by L{WebMessages}; their format is in
C{WEBSOCKET.md}.
"""

import json
import zlib
from typing import Any, Dict, List, Optional

from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket import protocol as _autobahn_protocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from zope.interface import implementer

from ...core import counters, errors, events
from ...core.interfaces import IChatClient
from ...core.text import name_key, sanitize
from ..line.commands import ChatCommands, CommandUsageError
from ..line.protocol import _HINTS
from ..session import KICK, WARN, DROP, ChatSession
from .deflate import deflate_frame, window_bits
from .frames import partial_text_frame, split_text_frames, text_frame
from .messages import WebMessages
from .render import (PROTOCOL_VERSION, WEB_RENDERER, encode_message, event_message,
                     history_line, private_line)

#: The WebSocket close code of a normal close.
CLOSE_NORMAL = 1000

_log = Logger()

# autobahn pretty-prints its forty protocol options for a debug message on
# every connection, whether or not debug messages are shown: half a
# millisecond, about half of what a web login costs the server.  Its debug
# messages, never shown here, get a plain repr instead.
_autobahn_protocol.pformat = repr  # type: ignore[assignment]


def same_origin(origin: str, host: str) -> bool:
    """Whether a page at C{origin} is this server's own page, reached as C{host}."""
    return bool(host) and origin in (f"http://{host}", f"https://{host}")


def _discard(data: bytes) -> None:
    """The writer of a closing WebSocket: nothing goes after the close frame."""


class WebSocketChat(WebSocketServerProtocol):
    """
    One WebSocket from the page (or a bot): checks the C{Origin} of the
    handshake, then hands every text frame to its L{WebSession}.
    """

    # (autobahn's own txaio logger stays: it drops autobahn's debug messages,
    # one per frame, which a twisted.logger Logger would write to the log)
    session: Optional["WebSession"] = None
    #: The start of a plain frame that the last read ended inside.
    _held_frame = b""
    #: autobahn's, from the factory's C{--web-max-frame} (0: no limit).
    maxMessagePayloadSize: int

    def dataReceived(self, data: bytes) -> None:
        """
        One read: its messages are one batch, as the lines of one read are on
        telnet (each member gets one frame for all the events they cause).
        """
        session = self.session
        if session is None:
            self._autobahn_reads(data)
            return
        held = self._held_frame
        if held:
            self._held_frame = b""
            data = held + data
        with session.chat.outbox.batch():
            if (self.state == WebSocketProtocol.STATE_OPEN and self.current_frame is None
                    and not self.inside_message and not self.data):
                # The plain frames are read here; the rest goes to autobahn
                # (compressed ones too: with permessage-deflate, a frame
                # without RSV1 is an uncompressed message, outside the
                # inflater's window).
                limit = self.maxMessagePayloadSize
                texts, used = split_text_frames(data, limit)
                if used:
                    self.trafficStats.incomingOctetsWireLevel += used
                    if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                        self._cancelAutoPingTimeoutCall()
                    for text in texts:
                        session.text_received(text)
                    data = data[used:]
                if not data:
                    return
                if partial_text_frame(data, limit) and self.state == WebSocketProtocol.STATE_OPEN:
                    self._held_frame = data  # the rest of it comes with the next read
                    return
            self._autobahn_reads(data)

    def _autobahn_reads(self, data: bytes) -> None:
        try:
            super().dataReceived(data)
        except zlib.error:
            # autobahn 24 (PyPy) lets a corrupt compressed message's error
            # out; autobahn 26 closes with 1007 itself
            self._fail_connection(WebSocketProtocol.CLOSE_STATUS_CODE_INVALID_PAYLOAD,
                                  "invalid compressed data")
            if self.transport is not None:
                self.transport.loseConnection()

    def onConnect(self, request) -> None:
        """Refuse a handshake from a page of another site (cross-site WebSocket hijacking)."""
        origin = request.headers.get("origin")
        if origin is not None:  # browsers always send one; bots need not
            allowed = self.factory.allowed_origins
            if not (same_origin(origin, request.headers.get("host", "")) or origin in allowed):
                _log.info("refused a WebSocket from origin {origin}", origin=origin)
                raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")

    def onOpen(self) -> None:
        """The handshake is done: the session greets the client."""
        self.session = WebSession(self)
        self.session.opened()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """One message from the client."""
        limit = self.maxMessagePayloadSize
        if limit and len(payload) > limit:
            # inflated past the limit (autobahn 24 cuts a compressed one
            # short at the limit plus one byte instead of refusing it)
            self._max_message_size_exceeded(len(payload), limit, "message too big")
            return
        if self.session is not None:
            self.session.message_received(payload, isBinary)

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        # autobahn's refusal (1009) can leave it inside the refused frame,
        # unable to read the client's answer to its close frame: the
        # connection closes once the close frame is sent.
        super()._max_message_size_exceeded(msg_size, max_msg_size, reason)
        if self.transport is not None:
            self.transport.loseConnection()

    def sendCloseFrame(self, code: Optional[int] = None, reasonUtf8: Optional[bytes] = None,
                       isReply: bool = False) -> None:
        """Every close goes through here (autobahn's, the session's): stop the session's writes."""
        if self.state == WebSocketProtocol.STATE_OPEN and self.session is not None:
            self.session.stop_writing()
        super().sendCloseFrame(code, reasonUtf8, isReply)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        """The WebSocket closed: the user leaves as with C{/quit}."""
        session, self.session = self.session, None
        if session is not None:
            session.connection_lost()


@implementer(IChatClient)
class WebSession(ChatSession, WebMessages, ChatCommands):
    """
    A person using the web page (or a bot speaking the JSON protocol).

    Phases: I{naming} (until a name is accepted), I{password} and
    I{checking} (a registered name: its password is awaited, then checked),
    I{chatting} and I{closing}.
    """

    renderer = WEB_RENDERER
    frontend = "web"
    log = Logger()

    def __init__(self, ws: WebSocketChat) -> None:
        self.ws = ws
        self.factory = ws.factory
        self.transport = ws.transport
        self.user = None
        self.state = "naming"
        self._timer: Any = None
        self._retry: Any = None
        self._pending_name = ""
        self._password_failures = 0

    # -- connection ---------------------------------------------------------

    def opened(self) -> None:
        """Admit the connection, greet the client and start the login deadline."""
        # twisted.web's HTTP channel was the transport's producer until the
        # WebSocket took the connection over; the session is now.
        transport = self.transport
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        if not self.open_session():
            return
        pmce = self.ws._perMessageCompress
        if pmce is not None:  # permessage-deflate: the client's frames are autobahn's
            direct, bits = self._direct_write, window_bits(pmce)

            def write(frame: bytes) -> None:
                direct(deflate_frame(frame, bits))

            self.write = self._direct_write = write
        self.clock = self.chat.clock
        timeout = self.chat.limits.login_timeout
        if timeout:
            self._timer = self.clock.callLater(timeout, self._timed_out)
        self.message({"type": "hello", "version": PROTOCOL_VERSION,
                      "server": self.chat.server_name,
                      "accounts": self.chat.accounts is not None})

    def refuse(self, reason: str) -> None:
        """Turned away at the door (too many connections): say why in a frame, and close."""
        self.disconnect(reason)

    def connection_lost(self) -> None:
        """Clean up exactly as for C{/quit}: no ghost names or members."""
        self.state = "closing"
        for call in (self._timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry = None
        if hasattr(self, "chat"):
            self.close_session()

    # -- IChatClient --------------------------------------------------------

    def deliver(self, event) -> None:
        """Show an event addressed to this user alone."""
        self.settle()
        self.write(text_frame(encode_message(event_message(event))))
        if type(event) is events.Kicked:
            self.send_state()

    def disconnect(self, reason: str) -> None:
        """Tell the user C{reason} and close the WebSocket."""
        if self.state == "closing":
            return
        self.settle()
        if reason:
            self.message({"type": "bye", "text": reason})
        self.state = "closing"
        self.stop_guarding_output()
        self.ws.sendClose(CLOSE_NORMAL)

    # -- output -------------------------------------------------------------

    # Frames are written straight to the socket, once per reactor turn (see
    # TurnWrites), and a room's are framed once for all its members (by the
    # renderer: autobahn's sendMessage would frame them again for each).
    # While the client is not reading, ChatSession holds them to the output
    # cap, as on the other front ends.

    def stop_writing(self) -> None:
        """
        The close frame is about to go (whoever closes): what this turn
        gathered goes before it, and nothing after it.
        """
        self.closing = True
        self.stop_guarding_output()
        self._swap_writer(_discard)

    def message(self, message: Dict[str, Any]) -> None:
        """Send one JSON message to this client."""
        self.settle()
        self.write(text_frame(encode_message(message)))

    def send(self, text: str) -> None:
        """A command's reply line (what telnet shows as a plain line)."""
        self.message({"type": "info", "text": text})

    def info(self, text: str) -> None:
        """A server notice."""
        self.message({"type": "info", "text": text})

    def error(self, text: str) -> None:
        """An error (which says what to do instead)."""
        self.message({"type": "error", "text": text})

    def refusal(self, e: errors.ChatError) -> None:
        """An error for a refusal of the core's, with the line protocol's hint."""
        self.error(f"{e} {_HINTS.get(type(e), '')}".rstrip())

    def send_state(self) -> None:
        """Tell the client its name, rooms and current room (after anything that may change them)."""
        user = self.user
        if user is None or self.state == "closing":
            return
        current = user.current
        self.message({"type": "state", "name": user.name, "registered": user.registered,
                      "rooms": [room.name for room in user.rooms.values()],
                      "current": current.name if current is not None else None})

    def room_message(self, room) -> Dict[str, Any]:
        """C{room}'s topic, modes and (the first of its) members, as a JSON message."""
        members: List[Dict[str, str]] = []
        limit = self.factory.max_members_listed
        prefix = room.moderation.prefix
        for user in room.members.values():
            if len(members) >= limit:
                break
            members.append({"name": user.name, "prefix": prefix(user.key)})
        letters, _ = room.moderation.modes(False)
        return {"type": "room", "room": room.name, "topic": room.topic,
                "topic_by": room.topic_set_by, "modes": letters,
                "members": members, "count": len(room)}

    # -- what ChatCommands calls --------------------------------------------

    def describe_room(self, room, joined: bool = False) -> None:
        """The room's state as one C{room} message; on entering it, its last lines too."""
        self.message(self.room_message(room))
        if joined:
            self.show_history(room, self.chat.replay_lines)

    def show_history(self, room, count: int, asked: bool = False, before: Optional[float] = None,
                     request: Optional[str] = None, keep: int = 0) -> None:
        """
        Send the last C{count} stored lines of C{room} as one message; with
        C{before}, the last C{keep} of them said before that time.
        """
        read = self.chat.history(room, count, self.user if asked else None)

        def show(lines):
            if before is not None:
                lines = [line for line in lines if line.when < before][-keep:]
            self.send_history(lines, room, request, asked)

        self.report(read.addCallback(show))

    def show_private_history(self, raw_peer: str, count: int,
                             request: Optional[str] = None) -> None:
        """
        Send the last C{count} lines of this user's private conversation
        with C{raw_peer} as one C{history} message (with C{with} instead of
        C{room}); raises L{errors.Busy} as L{Chat.history} does.
        """
        peer = sanitize(raw_peer)
        read = self.chat.private_history(self.user, raw_peer, count)

        def show(lines) -> None:
            if self.state != "closing":
                self.message({"type": "history", "with": peer, "asked": True,
                              "request": request,
                              "lines": [private_line(line) for line in lines]})

        self.report(read.addCallback(show))

    def send_history(self, lines, room, request: Optional[str], asked: bool = True) -> None:
        """Send stored C{lines} of C{room} as one C{history} message."""
        if self.state != "closing":
            self.message({"type": "history", "room": room.name, "asked": asked,
                          "request": request, "lines": [history_line(line) for line in lines]})

    def charge(self, lines: int) -> float:
        """Take C{lines} more lines from flood control (see the line protocol's)."""
        if not self.chat.limits.flood_rate:
            return 0.0
        return self._flood.take_extra(lines)

    def refund(self, lines: int) -> None:
        """Give back lines taken by L{charge} for a refused command."""
        if self.chat.limits.flood_rate:
            self._flood.refund(lines)

    def report(self, d):
        """Turn the failure of C{d} (a command waiting for the database) into an error message."""
        def failed(failure):
            if self.state == "closing":
                return None
            if failure.check(CommandUsageError):
                self.error(str(failure.value))
            elif failure.check(errors.ChatError):
                self.refusal(failure.value)
            else:
                self.log.failure("error for {peer}", failure, peer=self.peer)
                self.error("Sorry, something went wrong on the server; it has been logged.")
            if self.state == "checking":
                self.state = "naming"
                self.message({"type": "login"})
            return None

        return d.addErrback(failed)

    # -- input ----------------------------------------------------------------

    def message_received(self, payload: bytes, binary: bool) -> None:
        """One message as autobahn read it (text that autobahn found UTF-8, or binary)."""
        self.text_received(None if binary else payload.decode("utf-8", "replace"))

    def text_received(self, text: Optional[str]) -> None:
        """
        Decode and act on one text message (None: a binary one); nothing it
        holds can escape as an exception.
        """
        if self.state == "closing":
            return
        with self.chat.outbox.batch():
            limits = self.chat.limits
            if limits.flood_rate and not self._charge_message(limits):
                return
            try:
                message = json.loads(text) if text is not None else None
            except ValueError:
                message = None
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                self.error("Each message must be a JSON object with a \"type\" (see WEBSOCKET.md).")
                return
            if self.state == "chatting":
                self.user.last_active = self.clock.seconds()
            try:
                self.handle(message)
            except CommandUsageError as e:
                self.error(str(e))
            except errors.ChatError as e:
                self.refusal(e)
            except Exception:
                self.log.failure("error handling a message from {peer}", peer=self.peer)
                self.error("Sorry, something went wrong on the server; it has been logged.")

    def _charge_message(self, limits) -> bool:
        verdict = self._flood.charge()
        if verdict == WARN:
            self.error(f"Slow down: you are sending more than {limits.flood_rate:g} messages "
                       "a second. Messages sent too fast are dropped.")
        elif verdict == KICK:
            self.log.info("disconnecting {peer} for flooding", peer=self.peer)
            self.chat.count_disconnect(counters.FLOOD)
            if self.user is not None:
                self.chat.logout(self.user, "flooding")
            self.disconnect("You were disconnected for flooding.")
        return verdict not in (WARN, DROP, KICK)

    # -- logging in -------------------------------------------------------------

    def log_in(self, name: str, password: Optional[str]) -> None:
        """A name (and perhaps its password) from the login form."""
        if self.state == "password" and password and name_key(name) == name_key(
                self._pending_name):
            self._check_password(password)
            return
        if self.state not in ("naming", "password"):
            self.error("You are already logged in." if self.state == "chatting"
                       else "Your password is being checked.")
            return
        self.state = "naming"
        try:
            self.user = self.chat.login(self, name)
        except errors.NeedsPassword:
            self._pending_name = self.chat.validate_name(name)
            self.state = "password"
            if password:
                self._check_password(password)
            else:
                self.message({"type": "password", "name": self._pending_name})
            return
        except errors.ChatError as e:
            self.refusal(e)
            self.message({"type": "login"})
            return
        self._logged_in()

    def _check_password(self, password: str) -> None:
        self.state = "checking"
        key = name_key(self._pending_name)
        self.report(self.chat.accounts.authenticate(key, password, self.address, self)
                    .addCallbacks(self.password_checked, self._check_refused))

    def _check_refused(self, failure) -> None:
        failure.trap(errors.TooManyChecks)
        if self.state == "checking":
            self.state = "password"
            self.error(str(failure.value))
            self.message({"type": "password", "name": self._pending_name})

    def login_refused(self, error: errors.ChatError) -> None:
        """Say why the login was refused, and ask the page for a name again."""
        self.refusal(error)
        self.message({"type": "login"})

    def ask_password_again(self) -> None:
        """The password was wrong: ask the page for it again."""
        self.error("Wrong password. Try again.")
        self.message({"type": "password", "name": self._pending_name})

    def _logged_in(self) -> None:
        self.state = "chatting"
        self._start_idle_timer()
        user = self.user
        self.message({"type": "welcome", "name": user.name, "registered": user.registered,
                      "motd": self.chat.motd})
        for room in list(user.rooms.values()):
            self.describe_room(room, joined=True)
        self.send_state()
        if user.registered:
            self.report(self.chat.take_offline(user).addCallback(self._show_offline))

    def _show_offline(self, messages) -> None:
        if not messages or self.state == "closing":
            return
        self.message({"type": "offline", "messages": [
            {"sender": m.sender, "text": m.text, "action": m.action, "when": m.when}
            for m in messages]})

