"""
A line in the log, every few minutes, that says how the server is doing:
who is online, how many connections, rooms, and the traffic since the last
line.  Operators read it with C{grep stats twistd.log} and need no admin
shell for it.
"""

from typing import Dict, Optional

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

#: Seconds between two stats lines in the log (0 turns them off).
STATS_INTERVAL = 300.0


class StatsLogService(Service):
    """
    Logs L{Chat.stats<chatservice.core.chat.Chat.stats>} every C{interval}
    seconds, with the lines and bytes relayed since the previous line (and
    the database's counters when there is one), on the chat's clock.
    """

    log = Logger()

    def __init__(self, chat, interval: float = STATS_INTERVAL) -> None:
        self.chat = chat
        self.interval = interval
        self._previous: Optional[Dict[str, float]] = None
        self._loop = LoopingCall(self.log_stats)
        self._loop.clock = chat.clock

    def startService(self) -> None:
        """Start counting from now; the first line comes one interval later."""
        super().startService()
        self._previous = self.chat.stats()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        """Stop logging (no last line: the shutdown is logged already)."""
        if self._loop.running:
            self._loop.stop()
        return super().stopService()

    def log_stats(self) -> None:
        """Log one stats line."""
        now = self.chat.stats()
        before = self._previous or now
        self._previous = now
        elapsed = max(now["uptime"] - before["uptime"], 1e-9)
        lines = now["lines_relayed"] - before["lines_relayed"]
        sent = now["bytes_relayed"] - before["bytes_relayed"]
        store = self.chat.store
        database = ""
        if store is not None:
            database = (f"; database lines_written={store.lines_written} "
                        f"writes_dropped={store.writes_dropped}")
        # key=value, so that grep and awk can pick the figures out
        self.log.info(
            "stats: users={users} connections={connections} rooms={rooms}; "
            "last {elapsed:.0f} s: lines={lines} ({rate:.1f}/s) sent_kib={kib:.0f} "
            "logins={logins} refused={refused}{database}",
            users=now["users"], connections=now["connections"], rooms=now["rooms"],
            elapsed=elapsed, lines=lines, rate=lines / elapsed, kib=sent / 1024,
            logins=now["logins_total"] - before["logins_total"],
            refused=now["connections_refused"] - before["connections_refused"],
            database=database)
