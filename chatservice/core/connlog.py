"""
The log lines about connections, one per connection and cheap in a storm.

Logging costs tens of microseconds a line: in a storm of 1,000 connections
a second, two lines per connection were 29 % of the server's CPU and slowed
everyone's chat.  So a connection gets one line, when it closes (with how
long it lasted and who it was), and past L{CONNECTION_LOG_RATE} lines a
second the rest of the second's connections are counted and summed up in
one line instead of logged one by one.
"""

from typing import Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

#: Connection lines (closed or refused) logged one by one per second; the
#: others in the same second are summed up in one line.
CONNECTION_LOG_RATE = 20
#: The length of one counting window, in seconds.
CONNECTION_LOG_WINDOW = 1.0


def describe_duration(seconds: float) -> str:
    """C{0.2 s}, C{12 s}, C{5 min}, C{3.5 h}: how long a connection lasted."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ConnectionLog:
    """
    Logs connections as they close or are refused: one line each, up to
    C{rate} a second, and a summary of the ones beyond that.

    @ivar suppressed: lines not logged one by one in the current window.
    """

    log = Logger(namespace="chatservice.connections")

    def __init__(self, clock: IReactorTime, rate: int = CONNECTION_LOG_RATE,
                 window: float = CONNECTION_LOG_WINDOW) -> None:
        self.clock = clock
        self.rate = rate
        self.window = window
        self._logged = 0
        self._window_started = float("-inf")
        self.suppressed = 0
        self._summary: Optional[IDelayedCall] = None

    def _may_log(self) -> bool:
        """Count one line against this window; return whether it may be logged."""
        now = self.clock.seconds()
        if self._summary is None and now - self._window_started >= self.window:
            self._window_started = now
            self._logged = 0
        if self._logged < self.rate:
            self._logged += 1
            return True
        self.suppressed += 1
        if self._summary is None:  # only a storm leaves a timer behind
            self._summary = self.clock.callLater(
                self._window_started + self.window - now, self._end_window)
        return False

    def _end_window(self) -> None:
        self._summary = None
        suppressed, self.suppressed = self.suppressed, 0
        self._window_started = self.clock.seconds()
        self._logged = 0
        if suppressed:
            self.log.info(
                "{count} more connections closed or refused in the last {window:g} s "
                "(not logged one by one during a storm)",
                count=suppressed, window=self.window)

    def closed(self, peer: str, seconds: float, name: Optional[str]) -> None:
        """A connection from C{peer} closed after C{seconds}, logged in as C{name}."""
        if self._may_log():
            self.log.info("connection from {peer} closed after {duration} ({who})",
                          peer=peer, duration=describe_duration(seconds),
                          who=name if name is not None else "never logged in")

    def refused(self, address: Optional[str], refusal: str) -> None:
        """A connection from C{address} was turned away: C{refusal} says why."""
        if self._may_log():
            self.log.info("refused connection from {address}: {refusal}",
                          address=address, refusal=refusal)

    def stop(self) -> None:
        """Log the summary now, if one is due (at shutdown)."""
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
            self._end_window()
