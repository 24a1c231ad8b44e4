"""
The JSON messages a web client sends (see C{WEBSOCKET.md}), each turned
into one call of the chat's core, mixed into L{WebSession}.

C{input} is a line exactly as typed on telnet: a C{/command} runs the line
protocol's command (L{chatservice.frontends.line.commands}), anything else
is said to the current room.  The other messages are structured, for the
page and for bots.
"""

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from twisted.internet.defer import Deferred

from ...core import errors
from ...core.text import sanitize
from ..line.commands import HISTORY_LINES, MAX_HISTORY_LINES, CommandUsageError

if TYPE_CHECKING:
    from ...core.chat import Chat
    from ...core.user import User


def _text(message: Dict[str, Any], field: str, required: bool = True) -> str:
    value = message.get(field, "")
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise CommandUsageError(f"A \"{message.get('type')}\" message needs \"{field}\", "
                                "a non-empty string (see WEBSOCKET.md).")
    return value


class WebMessages:
    """The handlers of the client's messages, by C{type}."""

    if TYPE_CHECKING:  # what the session it is mixed into provides
        chat: Chat
        user: User
        state: str

        def message(self, message: Dict[str, Any]) -> None: ...
        def error(self, text: str) -> None: ...
        def send_state(self) -> None: ...
        def only_own_lines_pending(self) -> bool: ...
        write: Callable[[bytes], None]
        def room_message(self, room: Any) -> Dict[str, Any]: ...
        def describe_room(self, room: Any, joined: bool = False) -> None: ...
        def show_history(self, room: Any, count: int, asked: bool = False,
                         before: Optional[float] = None,
                         request: Optional[str] = None, keep: int = 0) -> None: ...
        def log_in(self, name: str, password: Optional[str]) -> None: ...
        def send_history(self, lines: Any, room: Any, request: Optional[str],
                         asked: bool = True) -> None: ...
        def report(self, d: Deferred) -> Deferred: ...
        def charge(self, lines: int) -> float: ...
        def refund(self, lines: int) -> None: ...
        def find_command(self, name: str) -> Optional[Callable[[str], None]]: ...
        def unknown_command(self, name: str) -> None: ...
        def do_register(self, arg: str) -> None: ...
        def do_quit(self, arg: str) -> None: ...
        def require_private_history(self) -> None: ...
        def show_private_history(self, raw_peer: str, count: int,
                                 request: Optional[str] = None) -> None: ...

    #: The messages accepted before logging in.
    BEFORE_LOGIN = ("login", "ping")

    def handle(self, message: Dict[str, Any]) -> None:
        """Act on one decoded message."""
        kind = message["type"]
        handler = getattr(self, "msg_" + kind, None) if kind.isidentifier() else None
        if handler is None:
            self.error(f"Unknown message type {sanitize(kind)[:20]!r} (see WEBSOCKET.md).")
            return
        if self.state != "chatting" and kind not in self.BEFORE_LOGIN:
            self.error("Log in first: send {\"type\": \"login\", \"name\": NAME}.")
            return
        handler(message)

    def _check_length(self, text: str) -> None:
        limit = self.chat.limits.max_line_length
        if len(text.encode("utf-8")) > limit:
            raise CommandUsageError(f"That message was too long (over {limit} bytes) and was "
                                    "not sent. Please split it into shorter ones.")

    def _room(self, message: Dict[str, Any]):
        room = self.chat.find_room(_text(message, "room"))
        return self.chat.member_room(self.user, room)

    def msg_login(self, message: Dict[str, Any]) -> None:
        """C{{"type": "login", "name": NAME, "password": PASSWORD (for a registered name)}}."""
        password = message.get("password")
        self.log_in(_text(message, "name"), password if isinstance(password, str) else None)

    def msg_ping(self, message: Dict[str, Any]) -> None:
        """C{{"type": "ping", "token": ANY}}: answered at once with a C{pong}."""
        self.message({"type": "pong", "token": message.get("token")})

    def msg_input(self, message: Dict[str, Any]) -> None:
        """C{{"type": "input", "text": LINE}}: a line as typed on telnet."""
        text = _text(message, "text")
        self._check_length(text)
        if text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            handler = self.find_command(name)
            if handler is None:
                self.unknown_command(name)
            else:
                try:
                    handler(arg.strip())
                finally:
                    self.send_state()
            return
        try:
            self.say(text)
        except errors.InvalidText:
            pass  # stray control characters alone are not a message

    def say(self, text: str, action: bool = False, room: Any = None) -> None:
        """
        Say C{text} (to C{room}, default the current one).  The sender sees
        it too, in the room's frame, exactly as everyone else does: a page
        has no terminal that echoes what was typed (the web renderer
        L{echoes_own_lines<chatservice.core.interfaces.IRenderer.echoes_own_lines>}).
        """
        self.chat.say(self.user, text, action=action, room=room)

    def do_say(self, arg: str) -> None:
        """TEXT
        Say TEXT to your current room exactly as typed, even if it starts
        with a slash.
        """
        if not arg:
            raise CommandUsageError("Usage: /say TEXT. Type /help say for more.")
        self.say(arg)

    def do_me(self, arg: str) -> None:
        """TEXT
        Describe an action: /me waves shows "* NAME waves" to your room.
        """
        if not arg:
            raise CommandUsageError("Usage: /me TEXT. Type /help me for more.")
        self.say(arg, action=True)

    def msg_say(self, message: Dict[str, Any]) -> None:
        """C{{"type": "say", "text": TEXT, "room": ROOM, "action": false}}: said literally."""
        text = _text(message, "text")
        self._check_length(text)
        room = self._room(message) if message.get("room") is not None else None
        self.say(text, action=bool(message.get("action")), room=room)

    def msg_join(self, message: Dict[str, Any]) -> None:
        """C{{"type": "join", "room": ROOM, "key": KEY}}: enter ROOM, or make it the current one."""
        key = message.get("key")
        room, entered = self.chat.join(self.user, _text(message, "room"),
                                       key if isinstance(key, str) and key else None)
        if entered:
            self.describe_room(room, joined=True)
        else:
            self.message(self.room_message(room))
        self.send_state()

    def msg_leave(self, message: Dict[str, Any]) -> None:
        """C{{"type": "leave", "room": ROOM, "reason": TEXT}}."""
        reason = message.get("reason")
        self.chat.leave(self.user, _text(message, "room"),
                        reason if isinstance(reason, str) else "")
        self.send_state()

    def msg_room(self, message: Dict[str, Any]) -> None:
        """C{{"type": "room", "room": ROOM}}: the room's topic, modes and members again."""
        self.message(self.room_message(self._room(message)))

    def msg_msg(self, message: Dict[str, Any]) -> None:
        """C{{"type": "msg", "to": NAME, "text": TEXT, "action": false}}: a private message."""
        name, text = _text(message, "to"), _text(message, "text")
        self._check_length(text)
        action = bool(message.get("action"))
        target = self.chat.whisper(self.user, name, text, action=action)
        if isinstance(target, Deferred):  # offline: told once it is stored
            self.report(target.addCallback(lambda _: self.message(
                {"type": "kept", "to": name,
                 "text": f"{name} is offline; they will get your message when they next "
                         "log in."})))
        else:
            self.message({"type": "private", "sender": self.user.name,
                          "recipient": target.name, "text": sanitize(text),
                          "action": action, "when": self.chat.clock.seconds()})

    def do_msg(self, arg: str) -> None:
        """NAME TEXT
        Send TEXT privately to NAME; only they see it.
        """
        name, _, text = arg.partition(" ")
        if not name or not text.strip():
            raise CommandUsageError("Usage: /msg NAME TEXT. Type /help msg for more.")
        self.msg_msg({"type": "msg", "to": name, "text": text})

    def msg_history(self, message: Dict[str, Any]) -> None:
        """
        C{{"type": "history", "room": ROOM, "limit": N, "before": TIME,
        "before_id": ID}}: the last N lines of a room the user is in; with
        C{before_id} (a line's C{id}, from an earlier answer), the N stored
        before it, read from the database however old; with C{before} (a
        time), the last N said before it among the room's last
        L{MAX_HISTORY_LINES}.  C{{"type": "history", "with": NAME, "limit":
        N}} instead: the last N lines of the user's private conversation
        with NAME (registered users only).
        """
        limit = message.get("limit", HISTORY_LINES)
        if type(limit) is not int or not 0 < limit <= MAX_HISTORY_LINES:
            raise CommandUsageError(f"\"limit\" must be a number of lines from 1 to "
                                    f"{MAX_HISTORY_LINES}.")
        if "with" in message:
            self.private_history(message, limit)
            return
        room = self._room(message)
        before, before_id = message.get("before"), message.get("before_id")
        if before is not None and type(before) not in (int, float):
            raise CommandUsageError("\"before\" must be a time in seconds (a line's \"when\").")
        if before_id is not None and (type(before_id) is not int or before_id <= 0):
            raise CommandUsageError("\"before_id\" must be a line's \"id\" (above 0).")
        if self.chat.accounts is None or self.chat.store is None:
            raise errors.Unavailable("Room history is not available: this server keeps no "
                                     "accounts or history.")
        count = limit if before is None or before_id is not None else MAX_HISTORY_LINES
        cost = self._charge_history(count)
        request = message.get("request")
        tag = request if isinstance(request, str) else None
        if before_id is not None:
            read = self.chat.store.history(room.key, limit, before_id)
            self.report(read.addCallback(self.send_history, room, tag))
            return
        try:
            self.show_history(room, count, asked=True, before=before, request=tag, keep=limit)
        except errors.Busy:
            self.refund(cost - 1)
            raise

    def _charge_history(self, lines: int) -> int:
        """
        Charge flood control for a history read of C{lines} (the message
        itself paid for one); return the cost, or refuse if it must wait.
        """
        limits = self.chat.limits
        cost = min(-(-lines // limits.history_lines_per_charge), limits.flood_burst)
        wait = self.charge(cost - 1)
        if wait:
            raise CommandUsageError(f"Slow down: that history counts as {cost} messages "
                                    f"against flood control. Try again in "
                                    f"{math.ceil(wait)} s, or ask for fewer lines.")
        return cost

    def private_history(self, message: Dict[str, Any], limit: int) -> None:
        """A C{history} message with C{with}: a private conversation's last lines."""
        peer = _text(message, "with")
        self.require_private_history()
        cost = self._charge_history(limit)
        request = message.get("request")
        try:
            self.show_private_history(peer, limit, request if isinstance(request, str) else None)
        except errors.Busy:
            self.refund(cost - 1)
            raise

    def msg_register(self, message: Dict[str, Any]) -> None:
        """C{{"type": "register", "password": PASSWORD}}: as C{/register}."""
        self.do_register(_text(message, "password"))

    def msg_quit(self, message: Dict[str, Any]) -> None:
        """C{{"type": "quit", "reason": TEXT}}: as C{/quit}."""
        reason = message.get("reason")
        self.do_quit(reason if isinstance(reason, str) else "")
