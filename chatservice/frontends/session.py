"""
What every front end's connection shares, whatever its protocol: admission
at the door and the connection log line at the end, flood control (a
L{TokenBucket}), and the output cap that drops a client which stops reading.

A front end's protocol mixes in L{ChatSession} and keeps only its framing,
its commands and its wording.
"""

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..core import counters, errors
from ..core.ratelimit import TokenBucket


def pending_output(transport) -> int:
    """
    Return how many bytes C{transport} holds that the peer has not taken
    yet, for the transports that expose it (TCP and UNIX sockets), else 0.
    """
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


#: What L{FloodControl.charge} says of a line.
PASS, WARN, DROP, KICK = "pass", "warn", "drop", "kick"


class FloodControl:
    """
    Flood control for one connection: a L{TokenBucket} of lines, and the
    episodes it tells apart.  The first line dropped in a flood is to be
    warned about, later ones dropped silently, and a flood that goes on past
    C{kick} dropped lines ends the connection.  A full bucket ends a flood.
    """

    def __init__(self, clock: IReactorTime, burst: int, rate: float, kick: int) -> None:
        self.bucket = TokenBucket(clock, burst, rate)
        self.kick = kick
        self.dropped = 0

    def take_extra(self, lines: float) -> float:
        """
        Take C{lines} more lines at once (a command that costs more than the
        line that asked for it), or nothing: return 0 if they were taken,
        else the seconds until the bucket holds that many.
        """
        if lines <= 0 or self.bucket.take(lines):
            return 0.0
        return self.bucket.seconds_until(lines)

    def refund(self, lines: float) -> None:
        """Give back C{lines} taken by L{take_extra} for a command that was refused."""
        bucket = self.bucket
        if lines > 0:
            bucket.tokens = min(bucket.refill() + lines, bucket.burst)

    def charge(self, cost: float = 1.0) -> str:
        """Charge one line (costing C{cost}); return L{PASS}, L{WARN}, L{DROP} or L{KICK}."""
        bucket = self.bucket
        if bucket.refill() >= bucket.burst:
            self.dropped = 0  # a full bucket ends a flood episode
        if bucket.take(cost):
            return PASS
        self.dropped += 1
        if self.dropped == 1:
            return WARN
        if self.dropped > self.kick:
            return KICK
        return DROP


@implementer(IPushProducer)
class ChatSession:
    """
    The part of an L{IChatClient} that every front end's protocol shares;
    mixed into a L{twisted.internet.protocol.Protocol} whose C{factory} has
    a C{chat} (a L{chatservice.core.chat.Chat}).

    The session registers itself as the transport's streaming producer only
    to learn when the client stops reading: while the transport says
    "pause", every write is measured against the output cap.

    Subclasses provide C{renderer}, C{disconnect(reason)} and a C{state}
    whose value C{"closing"} means the connection is closing (input is
    ignored, nothing more is sent).

    @ivar chat: the chat this connection belongs to.
    @ivar user: the logged-in user, or L{None}.
    @ivar peer: C{host:port} of the client, for logs.
    @ivar write: where this client's output goes (the transport's C{write},
        or a guarded one while the client is not reading).
    @cvar frontend: the front end's name, a label of the metrics.
    """

    log = Logger()

    frontend = "unknown"
    factory: Any
    transport: Any
    chat: Any
    user: Any = None
    peer = "?"
    #: The remote host (L{None} for local sockets), for the bounds per address.
    address: Optional[str] = None
    state: str
    _flood: FloodControl
    write: Callable[[bytes], None]
    #: The writer used while the client keeps up (L{TurnWrites.writer}'s
    #: when the factory has C{turn_writes}, a L{TurnWrites}).
    _direct_write: Callable[[bytes], None]
    _turn_writes: Any = None
    _admitted = False
    _connected_at = 0.0
    _producing = False
    _slow_since_pause = 0
    _password_failures = 0
    _long_lines = 0
    #: The login deadline, then the idle deadline (line and web front ends).
    _timer: Any = None
    #: The registered name whose password is awaited or being checked.
    _pending_name = ""
    _retry: Any = None
    #: Called with the new writer when it changes (a telnet filter's replies).
    on_writer_changed: Optional[Callable[[Callable[[bytes], None]], None]] = None

    @property
    def closing(self) -> bool:
        """Whether the connection is closing (input is ignored, nothing more is sent)."""
        return self.state == "closing"

    @closing.setter
    def closing(self, closing: bool) -> None:
        if closing:
            self.state = "closing"

    def open_session(self) -> bool:
        """
        At C{connectionMade}: note the peer, ask the chat to admit the
        connection (return false, after C{refuse(reason)}, if it does not)
        and set up the output cap and the socket options.
        """
        self.chat = self.factory.chat
        transport = self.transport
        turn_writes = self._turn_writes = getattr(self.factory, "turn_writes", None)
        self.write = self._direct_write = (
            transport.write if turn_writes is None else turn_writes.writer(transport))
        clock = self.chat.clock
        limits = self.chat.limits
        self._flood = FloodControl(clock, limits.flood_burst, limits.flood_rate,
                                   limits.flood_kick)
        peer = transport.getPeer()
        host = getattr(peer, "host", None)
        self.address = host
        self.peer = f"{host}:{getattr(peer, 'port', '')}" if host else str(peer)
        self._connected_at = clock.seconds()
        try:
            self.chat.admit(self, host)
        except errors.Refused as refusal:
            self.refuse(str(refusal))
            return False
        self._admitted = True
        if self.chat.limits.max_output:
            self._producing = True
            transport.registerProducer(self, True)
        if hasattr(transport, "setTcpKeepAlive"):
            transport.setTcpKeepAlive(True)  # notice half-open peers
            # A chat line should leave at once, not wait for the peer's
            # delayed ACK (Nagle): that cost 40 ms at p50 in the latency
            # benchmark.  Writes are already gathered, one per read.
            transport.setTcpNoDelay(True)
        return True

    def close_session(self) -> None:
        """At C{connectionLost}: the user leaves as with C{/quit}, and the log gets one line."""
        self.closing = True
        name = self.user.name if self.user is not None else None
        self.chat.client_disconnected(self, "connection closed")
        if self._admitted:
            self.chat.connection_log.closed(
                self.peer, self.chat.clock.seconds() - self._connected_at, name)

    def close_connection(self) -> None:
        """
        Close the connection once what was written to it is sent: what
        this turn gathered goes to the socket first (L{TurnWrites}), and
        the protocol stops being the transport's producer
        (L{stop_guarding_output}).
        """
        if self._turn_writes is not None:
            self._turn_writes.flush_now(self.transport)
        self.stop_guarding_output()
        self.transport.loseConnection()

    def stop_guarding_output(self) -> None:
        """
        Unregister as the transport's producer before closing: a registered,
        paused producer keeps a TCP transport from ever finishing
        C{loseConnection}.
        """
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()

    def password_checked(self, registered_name: Optional[str]) -> None:
        """
        The check of the password typed for a registered name is done:
        log in as C{registered_name} when it matched; else count the wrong
        password (L{wrong_password}) and ask again after
        C{--password-retry-delay}.  A front end says how it shows a
        refused login (C{login_refused}) and asks again
        (C{ask_password_again}), and what follows a login (C{_logged_in}).
        """
        if self.state != "checking":  # the connection closed meanwhile
            return
        if registered_name is not None:
            try:
                self.user = self.chat.login(self, registered_name, authenticated=True)
            except errors.ChatError as e:
                self.state = "naming"
                self.login_refused(e)
                return
            self._logged_in()
            return
        if self.wrong_password(self._pending_name, "Too many wrong passwords. Goodbye!"):
            return
        self._retry = self.chat.clock.callLater(self.chat.limits.password_retry_delay,
                                                self._ask_again)

    def _ask_again(self) -> None:
        self._retry = None
        if self.state == "checking":
            self.state = "password"
            self.ask_password_again()

    def login_refused(self, error: errors.ChatError) -> None:
        """Show why a login was refused, and ask for a name again."""
        raise NotImplementedError

    def ask_password_again(self) -> None:
        """Say the password was wrong, and ask for it again."""
        raise NotImplementedError

    def _logged_in(self) -> None:
        raise NotImplementedError

    # -- the login deadline, then the idle deadline (line and web) -----------

    def _timed_out(self) -> None:
        # One timer per connection: the login deadline, then (if set) the
        # idle deadline, re-armed lazily instead of reset on every line.
        self._timer = None
        if self.state in ("naming", "password", "checking"):
            self.log.info("{peer} took too long to log in", peer=self.peer)
            self.chat.count_disconnect(counters.LOGIN_TIMEOUT)
            self.disconnect("You took too long to choose a name. Goodbye!")
            return
        if self.state != "chatting" or not self.chat.limits.idle_timeout:
            return
        remaining = self.expire_if_idle(" Goodbye!")
        if remaining:
            self._timer = self.chat.clock.callLater(remaining, self._timed_out)

    def _start_idle_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        idle = self.chat.limits.idle_timeout
        if idle:
            self._timer = self.chat.clock.callLater(idle, self._timed_out)

    def too_many_long_lines(self) -> bool:
        """
        Count an over-long line; past C{--max-long-lines}, log the user
        out, disconnect them saying why, and return true.
        """
        self._long_lines += 1
        limit = self.chat.limits.max_long_lines
        if not limit or self._long_lines <= limit:
            return False
        self.log.info("disconnecting {peer}: too many over-long lines", peer=self.peer)
        self.chat.count_disconnect(counters.LONG_LINES)
        if self.user is not None:
            self.chat.logout(self.user, "too many over-long lines")
        self.disconnect("You were disconnected for sending too many over-long lines.")
        return True

    def wrong_password(self, name: str, goodbye: str = "Too many wrong passwords.") -> bool:
        """
        Count a wrong password given for the registered name C{name} and
        log it; once C{--password-tries} are used up, count the disconnect
        and close the connection with C{goodbye}, and return true.
        """
        self._password_failures += 1
        self.log.info("wrong password for {name} from {peer}", name=name, peer=self.peer)
        if self._password_failures < self.chat.limits.password_tries:
            return False
        self.chat.count_disconnect(counters.PASSWORDS)
        self.disconnect(goodbye)
        return True

    def expire_if_idle(self, goodbye: str = "") -> float:
        """
        Return the seconds until the logged-in user has been silent for
        C{--idle-timeout} (the caller re-arms its timer for then), or, once
        they have, log it, count it, log them out, disconnect them with a
        line ending in C{goodbye}, and return 0.
        """
        idle = self.chat.limits.idle_timeout
        remaining = self.user.last_active + idle - self.chat.clock.seconds()
        if remaining > 0:
            return remaining
        self.log.info("{name} was idle too long", name=self.user.name)
        self.chat.count_disconnect(counters.IDLE)
        self.chat.logout(self.user, "idle too long")
        self.disconnect(f"You were idle for more than {idle:g} seconds.{goodbye}")
        return 0.0

    def abort(self) -> None:
        """Drop the connection at once (a client that does not read)."""
        self.closing = True
        self.transport.abortConnection()

    # -- IPushProducer: learning that the client stopped reading ---------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: the client is not keeping up.  From
        now on, writes go through L{_write_while_backed_up}, which drops the
        client if its pending output passes the cap.
        """
        if self.closing:
            return
        self._slow_since_pause = 0
        self._swap_writer(self._write_while_backed_up)

    def resumeProducing(self) -> None:
        """The client caught up: write straight to the transport again."""
        if self.write != self._direct_write and not self.closing:
            self._swap_writer(self._direct_write)

    def stopProducing(self) -> None:
        """The connection is going away; nothing to do."""

    def _swap_writer(self, write: Callable[[bytes], None]) -> None:
        if self._turn_writes is not None:
            self._turn_writes.flush_now(self.transport)  # what was gathered goes first
        old, self.write = self.write, write
        if self.on_writer_changed is not None:
            self.on_writer_changed(write)
        if self.user is not None:
            for room in self.user.rooms.values():
                room.replace_writer(self.user, old)

    def _write_while_backed_up(self, data: bytes) -> None:
        if self.closing:
            return
        transport = self.transport
        transport.write(data)
        self._slow_since_pause += len(data)
        pending = pending_output(transport) or self._slow_since_pause
        if pending > self.chat.limits.max_output:
            self.drop_slow_reader(pending)

    def drop_slow_reader(self, pending: int) -> None:
        """Abort a client whose unread output passed the cap."""
        cap = self.chat.limits.max_output
        self.log.info("dropping {peer}: {pending} bytes unread (cap {cap})",
                      peer=self.peer, pending=pending, cap=cap)
        self.chat.count_disconnect(counters.SENDQ)
        if self.user is not None:
            self.chat.logout(self.user, "not reading: output buffer full")
        self.abort()

    def refuse(self, reason: str) -> None:
        """Tell a client turned away at the door why, and close its connection."""
        self.disconnect(reason)

    def disconnect(self, reason: str) -> None:
        """Tell the client C{reason} and close the connection (each front end words it)."""
        raise NotImplementedError

    def settle(self) -> None:
        """
        Deliver the room events gathered in the current batch before
        anything is written to this client directly, so that everyone sees
        things in the order they happened.
        """
        self.chat.outbox.settle()
