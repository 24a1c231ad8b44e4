"""
The metrics port (C{--metrics-port}): a small twisted.web site with
C{/metrics} (the Prometheus text format, from L{chatservice.metrics}),
C{/healthz} (the process answers) and C{/readyz} (the store can take
writes).

C{/metrics} is rendered on the reactor thread with C{generate_latest},
not with C{prometheus_client.twisted.MetricsResource} (a WSGI resource run
on the reactor's thread pool): the collectors read the chat's live
dictionaries, which only the reactor thread may touch (a thread iterating
the connections while the reactor adds one fails), and a scrape costs about
a millisecond plus a pass over the connections (7 ms at 10,000).
"""

import time
from typing import Callable, Optional, Sequence

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

from .looplag import LoopLagMonitor
from .service import listen_now
from .metrics import FRONTENDS, make_registry
from .persistence.store import MAX_BACKLOG

#: /readyz fails when more writes than this wait for the database writer
#: (a tenth of what it holds before it drops writes).
READY_MAX_QUEUE = MAX_BACKLOG // 10
#: /readyz fails when one transaction has run longer than this, in seconds.
READY_MAX_COMMIT_SECONDS = 10.0
#: The classic Prometheus text format, which C{generate_latest} writes for
#: names made of letters, digits and underscores, and which every Prometheus
#: reads (newer prometheus-client versions call it 1.0.0, older ones 0.0.4).
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Seconds an idle HTTP connection to the metrics port stays open.
HTTP_TIMEOUT = 30


def readiness(store, max_queue: int = READY_MAX_QUEUE,
              max_commit: float = READY_MAX_COMMIT_SECONDS,
              now: Callable[[], float] = time.monotonic) -> Optional[str]:
    """
    Return why the chat is not ready (one line), or L{None} if it is: it
    has no store, or its store's writer runs, is not more than
    C{max_queue} writes behind, is not stuck in one transaction for more
    than C{max_commit} seconds, and can write (its last batch committed, or
    one with changes has since an outage).
    """
    if store is None:
        return None
    if not store.writer_running:
        return "the database writer has stopped"
    if store.queued > max_queue:
        return (f"the database writer is {store.queued} writes behind "
                f"(more than {max_queue})")
    started = store.commit_started
    if started is not None and now() - started > max_commit:
        return (f"the database writer has been in one transaction for "
                f"{now() - started:.0f} s")
    failing = store.failing
    if failing is not None:
        return f"the database cannot write: {failing}"
    return None


class _Text(Resource):
    isLeaf = True

    def _answer(self, request, code: int, text: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return text.encode("utf-8") + b"\n"


class HealthResource(_Text):
    """C{/healthz}: 200 C{ok} whenever the reactor answers."""

    def render_GET(self, request) -> bytes:
        """Answer ok."""
        return self._answer(request, 200, "ok")


class ReadyResource(_Text):
    """C{/readyz}: 200 C{ready}, or 503 with the reason from L{readiness}."""

    def __init__(self, store) -> None:
        super().__init__()
        self.store = store

    def render_GET(self, request) -> bytes:
        """Answer whether the store can take writes."""
        reason = readiness(self.store)
        if reason is None:
            return self._answer(request, 200, "ready")
        return self._answer(request, 503, f"not ready: {reason}")


class MetricsResource(_Text):
    """
    C{/metrics}: every metric of the registry C{registry()} returns, in the
    Prometheus text format (503 while there is none yet: the port listens
    before the services start).
    """

    def __init__(self, registry: Callable[[], Optional[CollectorRegistry]]) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request) -> bytes:
        """Collect and encode the metrics (on the reactor thread)."""
        registry = self.registry()
        if registry is None:
            return self._answer(request, 503, "starting")
        body = generate_latest(registry)
        request.setHeader(b"content-type", CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        return body


class MetricsSite(Site):
    """A L{Site} that does not log every request (a scrape every 15 s would flood the log)."""

    def log(self, request) -> None:
        """Log nothing."""


class MetricsService(Service):
    """
    Serves C{/metrics}, C{/healthz} and C{/readyz} on C{endpoint} while
    running, and measures the event-loop lag.  The registry is built and
    the lag monitor started in L{startService}, after twistd has forked.

    @ivar registry: the service's L{CollectorRegistry} once started.
    @ivar lag: the L{LoopLagMonitor}.
    @ivar port: the listening port once listening (L{None} before).
    @ivar listening: a Deferred that fires with C{port} (or fails) after
        L{startService}.
    """

    name = "metrics"  # type: ignore[assignment]  # Service declares it None
    log = Logger()

    def __init__(self, endpoint, description: str, chat,
                 frontends: Sequence[str] = FRONTENDS) -> None:
        self.endpoint = endpoint
        self.description = description
        self.chat = chat
        self.frontends = tuple(frontends)
        self.lag = LoopLagMonitor(chat.clock)
        self.registry: Optional[CollectorRegistry] = None
        self.port = None
        self.listening: Optional[defer.Deferred] = None

    def site(self) -> Site:
        """The web site: C{/metrics}, C{/healthz}, C{/readyz}."""
        root = Resource()
        root.putChild(b"metrics", MetricsResource(lambda: self.registry))
        root.putChild(b"healthz", HealthResource())
        root.putChild(b"readyz", ReadyResource(self.chat.store))
        site = MetricsSite(root, timeout=HTTP_TIMEOUT)
        site.noisy = False
        return site

    def privilegedStartService(self) -> None:
        """
        Start listening (before C{twistd} sheds privileges, like the chat's
        ports); a port that cannot be listened on raises a one-line
        L{chatservice.service.StartupFailure} instead of a traceback.
        """
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        """Build the registry, start the lag monitor, and listen unless already listening."""
        super().startService()
        self.registry = make_registry(self.chat, self.lag, self.frontends)
        self.lag.start()
        if self.listening is None:
            self._listen()

    def _listen(self) -> None:
        self.listening = listen_now(self.endpoint, self.site(), "--metrics-port",
                                    self.description)
        self.listening.addCallbacks(self._listening, self._failed)

    def _listening(self, port):
        self.port = port
        self.log.info("metrics listening on {address}: /metrics, /healthz, /readyz",
                      address=port.getHost())
        return port

    def _failed(self, reason):
        self.log.failure("the metrics port cannot listen on {endpoint}", reason,
                         endpoint=self.description)
        return reason

    def stopService(self) -> defer.Deferred:
        """Stop measuring and listening."""
        super().stopService()
        self.lag.stop()
        if self.port is None:
            if self.listening is not None:
                self.listening.addErrback(lambda _: None)
            return defer.succeed(None)
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening)
