"""
The IRC front end's connection: framing (512-byte lines plus the IRCv3 tag
allowance), registration (CAP, PASS, NICK, USER), keep-alive PINGs and the
timeouts, and the output helpers the commands use.

The commands themselves are L{chatservice.frontends.irc.commands}; the
rules are the core's (L{chatservice.core.chat.Chat}); admission, flood
control and the output cap are the L{ChatSession}'s, as for the line
protocol.
"""

import hmac
from typing import Callable, Optional

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.words.protocols import irc
from zope.interface import implementer

from ... import __version__
from ...core import counters, errors
from ...core.interfaces import IChatClient
from ...core.text import name_key
from ..session import ChatSession
from .caps import CapNegotiation
from .commands import IRCCommands
from .labels import LabeledReply
from .moderation import CHANNEL_MODES, CHANNEL_MODES_WITH_PARAM, USER_MODES
from .wire import (
    ERR_INPUTTOOLONG,
    MAX_LINE_BYTES,
    MAX_TAG_BYTES,
    BadMessage,
    is_utf8,
    message,
    parse,
)

#: Most bytes of lines that may wait for flood control before the client
#: is disconnected for flooding (besides C{--flood-kick} lines).
MAX_WAITING_BYTES = 65536
#: Commands a client may send before it is registered.
BEFORE_REGISTRATION = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT",
                                 "AUTHENTICATE"})


@implementer(IChatClient)
class IRCProtocol(ChatSession, IRCCommands, Protocol):
    """
    One IRC client.

    States: I{registering} (until NICK and USER, and CAP END if CAP was
    used), I{checking} (a PASS is being checked), I{registered}, and
    I{closing}.

    @ivar nick: the nick asked for during registration.
    @ivar username: the user name given with USER.
    @ivar realname: the real name given with USER.
    @ivar away: the away message, or L{None}.
    """

    log = Logger()
    frontend = "irc"

    def __init__(self) -> None:
        self.user = None
        self.state = "registering"
        self.caps = CapNegotiation()
        self.nick: Optional[str] = None
        self.username: Optional[str] = None
        self.realname = ""
        self.password: Optional[str] = None
        self.away: Optional[str] = None
        self._buffer = b""
        self._discarding = False
        self._long_lines = 0
        self._password_failures = 0
        self._registration_timer = None
        self._ping_timer = None
        self._retry = None
        self._idle_timer = None
        self._last_heard = 0.0
        self._pinged = False
        self._label: Optional[LabeledReply] = None
        self._holding = False
        self._flood_timer = None

    # -- connection ----------------------------------------------------------

    def connectionMade(self) -> None:
        """Admit the connection and start the registration and ping timers."""
        self.chat = self.factory.chat
        limits = self.chat.limits
        self.clock = self.chat.clock
        if not self.open_session():
            return
        self._last_heard = self.clock.seconds()
        if limits.login_timeout:
            self._registration_timer = self.clock.callLater(
                limits.login_timeout, self._registration_timed_out)
        self._arm_ping(self.factory.ping_interval)

    def connectionLost(self, reason=None) -> None:
        """Clean up as for QUIT: no ghost nicks or members."""
        self.state = "closing"
        for call in (self._registration_timer, self._ping_timer, self._retry,
                     self._idle_timer, self._flood_timer):
            if call is not None and call.active():
                call.cancel()
        self._registration_timer = self._ping_timer = self._retry = self._idle_timer = None
        self._flood_timer = None
        self.close_session()

    def _registration_timed_out(self) -> None:
        self._registration_timer = None
        if self.user is None and self.state != "closing":
            self.log.info("{peer} took too long to register", peer=self.peer)
            self.chat.count_disconnect(counters.LOGIN_TIMEOUT)
            self.disconnect("Registration timed out: send NICK and USER (and CAP END "
                            "if you sent CAP) sooner.")

    def _idle_due(self) -> None:
        """
        Disconnect a user who sent no command but PING and PONG for
        C{--idle-timeout} seconds (the timer is re-armed lazily, not reset
        on every line).
        """
        self._idle_timer = None
        idle = self.chat.limits.idle_timeout
        if self.user is None or self.state == "closing" or not idle:
            return
        remaining = self.expire_if_idle()
        if remaining:
            self._idle_timer = self.clock.callLater(remaining, self._idle_due)

    def _arm_ping(self, delay: float) -> None:
        if delay and self.state != "closing":
            self._ping_timer = self.clock.callLater(delay, self._ping_due)

    def _ping_due(self) -> None:
        """A PING to a silent client, then a close if it stays silent."""
        self._ping_timer = None
        if self.state == "closing":
            return
        interval, timeout = self.factory.ping_interval, self.factory.ping_timeout
        silent = self.clock.seconds() - self._last_heard
        if self._pinged:
            if silent >= timeout:
                self.log.info("{peer}: ping timeout", peer=self.peer)
                self.chat.count_disconnect(counters.PING_TIMEOUT)
                if self.user is not None:
                    self.chat.logout(self.user, "ping timeout")
                self.disconnect(f"Ping timeout: {silent:.0f} seconds without a word "
                                "from your client.")
                return
            self._arm_ping(timeout - silent)
            return
        if silent >= interval:
            self._pinged = True
            self.send_line(message(None, "PING", self.server))
            self._arm_ping(timeout or interval)
        else:
            self._arm_ping(interval - silent)

    # -- IChatClient -----------------------------------------------------------

    def deliver(self, event) -> None:
        """Show an event addressed to this user alone."""
        self.settle()
        self.write(self.renderer.personal(event, self.target))

    def disconnect(self, reason: str) -> None:
        """Say C{reason} in a NOTICE and an ERROR line, then close."""
        if self.state == "closing":
            return
        self.settle()
        if reason:
            self.notice(reason)
        self.close_with_error(f"Closing link: {reason or 'Goodbye'}")

    def close_with_error(self, text: str) -> None:
        """Send an ERROR line (the answer to QUIT) and close."""
        if self.state == "closing":
            return
        self._flush_label()
        self.send_line(message(None, "ERROR", text))
        self.state = "closing"
        self.close_connection()

    # -- output ------------------------------------------------------------------

    def send_line(self, data: bytes) -> None:
        """
        Write encoded lines, after the room events gathered so far (or
        gather them, when they answer a labeled command).
        """
        self.settle()
        if self._label is not None:
            self._label.lines.append(data)
            return
        self.write(data)

    def _flush_label(self) -> None:
        """Send the labeled answer gathered so far (see L{LabeledReply})."""
        label, self._label = self._label, None
        if label is not None:
            ref = None
            if "batch" in self.caps:
                self.batches += 1
                ref = f"L{self.batches}"
            self.write(label.render(self.server, ref))

    def reply(self, numeric: str, *params: str) -> None:
        """Send a numeric reply addressed to this client."""
        self.send_line(message(self.server, numeric, self.target, *params))

    def notice(self, text: str) -> None:
        """A NOTICE from the server to this client."""
        self.send_line(message(self.server, "NOTICE", self.target, text))

    # -- input -------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Split C{data} into lines (LF or CRLF), refusing over-long ones with 417."""
        with self.chat.outbox.batch():
            self._receive(data)

    def hold_input(self) -> Optional[LabeledReply]:
        """
        Read no more lines until L{release_input}, for a command answered
        later (from the store): its answer then comes before the replies
        to the commands sent after it.  Return the command's label, kept
        for its answer.
        """
        label, self._label = self._label, None
        self._holding = True
        self.transport.pauseProducing()
        return label

    def release_input(self, label: Optional[LabeledReply],
                      answer: Optional[Callable[[], None]] = None) -> None:
        """Send C{answer()} (labeled with C{label}), then go on reading lines."""
        if self.state == "closing":
            return
        self._label = label
        try:
            if answer is not None:
                answer()
        finally:
            self._flush_label()
        self._holding = False
        self.transport.resumeProducing()
        if self._buffer:
            self.dataReceived(b"")

    def _receive(self, data: bytes) -> None:
        self._last_heard = self.clock.seconds()
        self._pinged = False
        if self._buffer:
            data = self._buffer + data
        limits = self.chat.limits
        if self._holding:
            self._buffer = data
            if (self._flood_timer is not None and self.state != "closing"
                    and (data.count(b"\n") > limits.flood_kick
                         or len(data) > MAX_WAITING_BYTES)):
                self._flood_kick()
            return
        lines = data.split(b"\n")
        rest = lines.pop()
        for index, line in enumerate(lines):
            if self.state == "closing":
                return
            if self._holding:
                self._buffer = b"\n".join(lines[index:] + [rest])
                return
            if self._discarding:
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._too_long(line):
                self._line_too_long()
                continue
            if limits.flood_rate and not self._flood.bucket.take(1):
                # Over the flood rate: the rest waits its turn, as IRC
                # servers do (RFC 1459 8.10), instead of being dropped.
                self._buffer = b"\n".join(lines[index:] + [rest])
                if len(lines) - index > limits.flood_kick:
                    self._flood_kick()
                else:
                    self._delay_input(self._flood.bucket.seconds_until(1))
                return
            self.lineReceived(line)
        if len(rest) > MAX_TAG_BYTES + MAX_LINE_BYTES and self.state != "closing":
            if not self._discarding:
                self._line_too_long()
            self._discarding = True
            rest = b""
        self._buffer = rest

    @staticmethod
    def _too_long(line: bytes) -> bool:
        """Whether a line (without CRLF) is over 512 bytes plus its tags' allowance."""
        if line.startswith(b"@"):
            tags, _, line = line.partition(b" ")
            if len(tags) + 1 > MAX_TAG_BYTES:
                return True
        return len(line) > MAX_LINE_BYTES - 2

    def _line_too_long(self) -> None:
        if self.too_many_long_lines():
            return
        self.reply(ERR_INPUTTOOLONG,
                   f"Input line was too long (over {MAX_LINE_BYTES} bytes, or "
                   f"{MAX_TAG_BYTES} bytes of tags) and was not sent")

    def _delay_input(self, wait: float) -> None:
        """
        Act on no lines for C{wait} seconds (flood control), then go on.
        Reading goes on meanwhile (what arrives waits, up to C{--flood-kick}
        lines), so that a client that hangs up is seen at once.
        """
        self._holding = True
        self._flood_timer = self.clock.callLater(max(wait, 0.001), self._flood_over)

    def _flood_over(self) -> None:
        self._flood_timer = None
        if self.state == "closing":
            return
        self._holding = False
        if self._buffer:
            self.dataReceived(b"")

    def _flood_kick(self) -> None:
        """More than C{--flood-kick} lines wait for flood control: close."""
        self.log.info("disconnecting {peer} for flooding", peer=self.peer)
        self.chat.count_disconnect(counters.FLOOD)
        if self.user is not None:
            self.chat.logout(self.user, "flooding")
        self.disconnect(f"You were disconnected for flooding: more than "
                        f"{self.chat.limits.flood_kick} lines were waiting.")

    def lineReceived(self, line: bytes) -> None:
        """
        Act on one IRC message; no input can escape as an exception.  Bytes
        that are not UTF-8 become U+FFFD, and (UTF8ONLY being advertised)
        the sender is warned with C{WARN <command> INVALID_UTF8} first.
        """
        text = line.decode("utf-8", "replace")
        if not text.strip():
            return
        try:
            msg = parse(text)
        except BadMessage:
            self.reply(irc.ERR_UNKNOWNCOMMAND, "*", "That line holds no command")
            return
        label = msg.tags.get("label")
        if label and "labeled-response" in self.caps:
            self._label = LabeledReply(label)
        try:
            if "\ufffd" in text and not is_utf8(line):
                self.send_line(message(self.server, "WARN", msg.command, "INVALID_UTF8",
                                       "Your line was not valid UTF-8: its bad bytes were replaced"))
            self.dispatch(msg)
        except Exception:
            self.log.failure("error handling a line from {peer}", peer=self.peer)
            self.notice("Sorry, something went wrong on the server; it has been logged.")
        finally:
            self._flush_label()

    def dispatch(self, msg) -> None:
        """Run the handler of C{msg}'s command, or answer 421 / 451 / 461."""
        handler = self.find_command(msg.command)
        if handler is None:
            self.reply(irc.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            return
        if self.user is None and msg.command not in BEFORE_REGISTRATION:
            self.reply(irc.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(msg.params) < self.minimum_params(msg.command):
            self.reply(irc.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        if self.user is not None and msg.command not in ("PING", "PONG"):
            self.user.last_active = self.clock.seconds()
        handler(msg)

    # -- registration ------------------------------------------------------------

    def try_register(self) -> None:
        """Register once NICK and USER are in and CAP negotiation (if any) ended."""
        if self.state == "checking" and self._retry is not None:
            self.notice("Wrong password: wait a moment, then send PASS and NICK again.")
            return
        if (self.user is not None or self.state != "registering" or self.caps.negotiating
                or self.nick is None or self.username is None or self.sasl_checking):
            return
        nick = self.nick
        chat = self.chat
        if self.factory.server_password is not None and not self._server_password_given():
            return
        if self.sasl_account is not None:
            # Logged in with SASL: the account is who they are.
            self._log_in(self.sasl_account, authenticated=True)
            return
        if self.password is not None and chat.is_registered(nick):
            self.state = "checking"
            password, self.password = self.password, None
            d = chat.accounts.authenticate(name_key(nick), password, self.address, self)
            d.addCallbacks(self._password_checked, self._check_refused, (nick,))
            d.addErrback(self._check_failed)
            return
        self._log_in(nick, authenticated=False)

    def _server_password_given(self) -> bool:
        """
        With C{--irc-password}, whether PASS gave it (it is then not taken
        for the nick's password): if not, 464 and ERROR, and the connection
        closes, as RFC 1459 has it.
        """
        given, self.password = self.password, None
        expected = self.factory.server_password.encode("utf-8")
        if given is not None and hmac.compare_digest(given.encode("utf-8"), expected):
            return True
        self.log.info("{peer}: wrong or no server password", peer=self.peer)
        self.reply(irc.ERR_PASSWDMISMATCH, "Password incorrect" if given is not None else
                   "This server needs a password: send PASS <password> before NICK and USER")
        self.close_with_error("Closing link: bad server password")
        return False

    def _log_in(self, nick: str, authenticated: bool) -> None:
        try:
            self.user = self.chat.login(self, nick, authenticated=authenticated,
                                        enter_default_room=False)
        except errors.NeedsPassword:
            self.nick = None
            self.reply(irc.ERR_NICKNAMEINUSE, nick, "Nickname is registered")
            how = ("log in with SASL PLAIN (this server's PASS is its own password)"
                   if self.factory.server_password is not None else
                   f"send PASS <password> and then NICK {nick} to log in with it")
            self.notice(f"The nick {nick} is registered: {how}, or choose another nick.")
            return
        except errors.NameTaken as e:
            self.nick = None
            self.reply(irc.ERR_NICKNAMEINUSE, nick, str(e))
            return
        except errors.InvalidName as e:
            self.nick = None
            self.reply(irc.ERR_ERRONEUSNICKNAME, nick, str(e))
            return
        self.state = "registered"
        if self._registration_timer is not None and self._registration_timer.active():
            self._registration_timer.cancel()
        self._registration_timer = None
        idle = self.chat.limits.idle_timeout
        if idle:
            self._idle_timer = self.clock.callLater(idle, self._idle_due)
        self.welcome()
        if self.user.registered:
            d = self.chat.take_offline(self.user)
            d.addCallback(self.show_offline).addErrback(self._check_failed)

    def _password_checked(self, registered_name, nick: str) -> None:
        if self.state != "checking":
            return
        if registered_name is not None:
            self.state = "registering"
            self._log_in(registered_name, authenticated=True)
            return
        self.reply(irc.ERR_PASSWDMISMATCH, "Password incorrect")
        if self.wrong_password(nick):
            return
        self.nick = None
        self._retry = self.clock.callLater(self.chat.limits.password_retry_delay,
                                           self._retry_allowed)

    def _check_refused(self, failure) -> None:
        """Too many password checks wait: say so; the client may send PASS and NICK again."""
        failure.trap(errors.TooManyChecks)
        if self.state != "checking":
            return
        self.state = "registering"
        self.nick = None
        self.notice(f"{failure.value} Send PASS <password> and NICK again.")

    def _retry_allowed(self) -> None:
        self._retry = None
        if self.state == "checking":
            self.state = "registering"
            self.notice("Send PASS <password> and NICK again to retry.")

    def _check_failed(self, failure) -> None:
        if self.state == "closing":
            return
        self.log.failure("error for {peer}", failure, peer=self.peer)
        if self.state == "checking":
            self.state = "registering"
            self.nick = None
        self.notice("Sorry, something went wrong on the server; it has been logged.")

    def welcome(self) -> None:
        """001 to 005, LUSERS and the MOTD, as a client expects after registering."""
        nick = self.user.name
        network = self.factory.server_name
        version = f"chatservice-{__version__}"
        self.reply(irc.RPL_WELCOME, f"Welcome to the {network} IRC network, "
                   f"{self.renderer.source(nick)}")
        self.reply(irc.RPL_YOURHOST, f"Your host is {self.server}, running version {version}")
        self.reply(irc.RPL_CREATED, f"This server was created {self.factory.created}")
        self.reply(irc.RPL_MYINFO, self.server, version, USER_MODES, CHANNEL_MODES,
                   CHANNEL_MODES_WITH_PARAM)
        for chunk in self.factory.isupport_chunks():
            self.reply(irc.RPL_ISUPPORT, *chunk, "are supported by this server")
        self.send_lusers()
        self.send_motd()
