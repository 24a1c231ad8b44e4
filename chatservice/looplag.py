"""
Event-loop lag: how late a timer on the reactor fires.  Everything the chat
does runs on the reactor thread, so when one piece of work takes too long
(a huge broadcast, a blocking call, a statement typed in the admin shell)
every timer and every read waits behind it.  A timer that fires late by
C{N} seconds is the one number that says "the reactor was blocked for N
seconds".
"""

from typing import Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .histogram import Histogram

#: Seconds between two measurements.
LAG_INTERVAL = 0.5
#: Upper bounds, in seconds, of the lag histogram's buckets.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
               2.5, 5.0, 10.0)


class LoopLagMonitor:
    """
    Schedules a call every C{interval} seconds on C{clock} and records, in
    L{histogram}, how late each one fired.  Each call is scheduled from
    the one before (not on a fixed grid, as L{twisted.internet.task.LoopingCall}
    does, which skips the beats a blocked reactor missed): one blocked
    stretch is one late call, measured in full.

    @ivar histogram: the lags, in seconds.
    @ivar last: the last lag measured, in seconds.
    """

    def __init__(self, clock: IReactorTime, interval: float = LAG_INTERVAL) -> None:
        self.clock = clock
        self.interval = interval
        self.histogram = Histogram(LAG_BUCKETS)
        self.last = 0.0
        self._due = 0.0
        self._call: Optional[IDelayedCall] = None

    @property
    def running(self) -> bool:
        """Whether the monitor is measuring."""
        return self._call is not None

    def start(self) -> None:
        """Start measuring (call from C{startService})."""
        if self._call is None:
            self._schedule()

    def stop(self) -> None:
        """Stop measuring."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _schedule(self) -> None:
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._beat)

    def _beat(self) -> None:
        self.last = max(0.0, self.clock.seconds() - self._due)
        self.histogram.observe(self.last)
        self._schedule()
