"""
The metrics: one L{CollectorRegistry} per service, whose collectors read,
at scrape time, the counters the chat keeps anyway (L{Chat.stats
<chatservice.core.chat.Chat.stats>}, the store's writer counters, the
limits, the event-loop lag monitor).  The C{stats:} log line, the admin
shell's C{stats()} and C{/metrics} therefore show the same numbers, and
nothing on the broadcast path does any work for the metrics.

Label values are fixed words (front ends, reasons, kinds of line), never
user or room names.
"""

from typing import Any, Dict, Iterable, Iterator, Optional, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from .core.counters import DISCONNECTS, LINE_KINDS, REFUSALS
from .frontends.session import pending_output
from .histogram import Histogram
from .looplag import LoopLagMonitor

#: The prefix of every chatservice metric.
PREFIX = "chatservice"
#: The front ends shown even with no connection (their gauges read 0).
FRONTENDS = ("line", "irc")


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, documentation, buckets=histogram.cumulative(),
                                 sum_value=histogram.sum)


class ChatCollector(Collector):
    """
    Yields the chat's metrics from its live counters at every scrape.

    @ivar chat: the L{chatservice.core.chat.Chat}.
    @ivar lag: the L{LoopLagMonitor}, or L{None}.
    @ivar frontends: the front ends that always get a sample.
    """

    def __init__(self, chat, lag: Optional[LoopLagMonitor] = None,
                 frontends: Sequence[str] = FRONTENDS) -> None:
        self.chat = chat
        self.lag = lag
        self.frontends = tuple(frontends)

    def collect(self) -> Iterator[Metric]:
        """Read the counters now and yield them as metric families."""
        chat = self.chat
        stats = chat.stats()
        yield from self._connections(chat)
        yield GaugeMetricFamily(
            f"{PREFIX}_max_connections",
            "Connections accepted at once (--max-connections; 0: no limit).",
            value=chat.limits.max_connections)
        yield CounterMetricFamily(
            f"{PREFIX}_connections_accepted", "Connections accepted since the start.",
            value=stats["connections_total"])
        refused = CounterMetricFamily(
            f"{PREFIX}_connections_refused", "Connections turned away at the door, by reason.",
            labels=["reason"])
        for reason in REFUSALS:
            refused.add_metric([reason], stats[f"refused_{reason}"])
        yield refused
        yield CounterMetricFamily(f"{PREFIX}_logins", "Logins since the start.",
                                  value=stats["logins_total"])
        disconnects = CounterMetricFamily(
            f"{PREFIX}_disconnects", "Connections the server closed for a limit, by reason.",
            labels=["reason"])
        for reason in DISCONNECTS:
            disconnects.add_metric([reason], stats[f"disconnects_{reason}"])
        yield disconnects
        lines = CounterMetricFamily(
            f"{PREFIX}_lines", "Lines said (say), acted (act, /me) and sent privately (private).",
            labels=["kind"])
        for kind in LINE_KINDS:
            lines.add_metric([kind], stats[f"lines_{kind}"])
        yield lines
        yield CounterMetricFamily(
            f"{PREFIX}_deliveries",
            "Writes of room lines to members (one per member per batch of lines).",
            value=stats["deliveries"])
        yield CounterMetricFamily(
            f"{PREFIX}_delivered_bytes", "Bytes of room lines written to members.",
            value=stats["bytes_relayed"])
        yield GaugeMetricFamily(f"{PREFIX}_rooms", "Rooms now.", value=stats["rooms"])
        yield GaugeMetricFamily(f"{PREFIX}_uptime_seconds", "Seconds since the chat started.",
                                value=stats["uptime"])
        if chat.store is not None:
            yield from self._store(chat.store)
        if self.lag is not None:
            yield _histogram(
                f"{PREFIX}_event_loop_lag_seconds",
                "How late a periodic timer fired on the reactor: how long the "
                "event loop was blocked.", self.lag.histogram)

    def _connections(self, chat) -> Iterable[Metric]:
        connections: Dict[str, int] = dict.fromkeys(self.frontends, 0)
        users: Dict[str, int] = dict.fromkeys(self.frontends, 0)
        total = largest = 0
        for client in chat.clients:
            frontend = getattr(client, "frontend", "unknown")
            connections[frontend] = connections.get(frontend, 0) + 1
            transport: Any = getattr(client, "transport", None)
            pending = pending_output(transport) if transport is not None else 0
            total += pending
            if pending > largest:
                largest = pending
        for user in chat.users.values():
            frontend = getattr(user.client, "frontend", "unknown")
            users[frontend] = users.get(frontend, 0) + 1
        gauge = GaugeMetricFamily(f"{PREFIX}_connections", "Open connections, by front end.",
                                  labels=["frontend"])
        for frontend, count in connections.items():
            gauge.add_metric([frontend], count)
        yield gauge
        gauge = GaugeMetricFamily(f"{PREFIX}_users", "Logged-in users, by front end.",
                                  labels=["frontend"])
        for frontend, count in users.items():
            gauge.add_metric([frontend], count)
        yield gauge
        yield GaugeMetricFamily(
            f"{PREFIX}_pending_output_bytes",
            "Bytes written to clients that they have not read yet, all together.",
            value=total)
        yield GaugeMetricFamily(
            f"{PREFIX}_pending_output_max_bytes",
            "The largest unread output of one client (dropped past --max-output).",
            value=largest)

    @staticmethod
    def _store(store) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_database_up",
            "1 while the database writer runs and can write.",
            value=int(store.writer_running and store.failing is None))
        yield GaugeMetricFamily(
            f"{PREFIX}_database_queue_depth", "Writes and reads waiting for the database writer.",
            value=store.queued)
        yield CounterMetricFamily(
            f"{PREFIX}_database_lines_written", "History lines committed since the start.",
            value=store.lines_written)
        yield CounterMetricFamily(
            f"{PREFIX}_database_writes_dropped",
            "Writes refused because the writer was too far behind or stopped.",
            value=store.writes_dropped)
        yield CounterMetricFamily(
            f"{PREFIX}_database_batches", "Transactions committed since the start.",
            value=store.batches)
        yield CounterMetricFamily(
            f"{PREFIX}_database_batches_failed", "Batches whose transaction failed (their history lines are lost).",
            value=store.batches_failed)
        yield _histogram(
            f"{PREFIX}_database_commit_seconds",
            "How long each transaction of the database writer took.", store.commit_seconds)


def make_registry(chat, lag: Optional[LoopLagMonitor] = None,
                  frontends: Sequence[str] = FRONTENDS,
                  process: bool = True) -> CollectorRegistry:
    """
    Return a new registry (never the global default one) holding a
    L{ChatCollector} and, if C{process}, prometheus-client's
    L{ProcessCollector} (CPU, memory, open files of this process).  Build
    it in C{startService}: registering takes the registry's lock.
    """
    registry = CollectorRegistry()
    registry.register(ChatCollector(chat, lag, frontends))
    if process:
        ProcessCollector(registry=registry)
    return registry
