"""
The load-generator processes: L{_Worker} runs a share of the clients on
its own reactor in each process, and L{WorkerPool} drives them from the
coordinator (which runs no reactor) over one pipe per worker.
"""

import collections
import multiprocessing
import multiprocessing.connection
import signal
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence

from chatservice.bench.clients import make_client_classes
from chatservice.bench.dialects import DIALECTS, ChatDialect, message_lines
from chatservice.bench.errors import BenchError
from chatservice.bench.system import cpu_seconds, raise_nofile_limit


def source_address(host: str, idx: int, per_source: int) -> Optional[tuple]:
    """
    The local address client C{idx} connects from: for a server on a
    loopback address, C{per_source} clients per address from 127.0.1.0
    upwards (past one address's 28,000 ports and any per-address limit);
    L{None} (the kernel's choice) otherwise, or when C{per_source} is 0.
    """
    if not per_source or not host.startswith("127."):
        return None
    n = 256 + idx // per_source  # 127.0.1.0 is the first
    return (f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 0)


def _pending_output(transport) -> int:
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


class _Worker:
    """
    The load generator in one process: it owns a share of the clients and
    does what the coordinator asks (set up, sync, fan out, pace, stop,
    close), reporting its counters every tenth of a second.
    """

    def __init__(self, wid: int, conn, reactor) -> None:
        from twisted.internet.task import LoopingCall

        self.wid = wid
        self.conn = conn
        self.reactor = reactor
        self.Client, self.Factory, self.Sender = make_client_classes()
        self.clients: List[Any] = []
        self.dialect = ChatDialect
        self.phase: Optional[str] = None
        self._deadline = None
        self._pacer = None
        self.pending: collections.deque = collections.deque()
        self.ready = self.failed = self.inflight = self.n_setup = 0
        self.synced = self.n_sync = 0
        self.t_start = self.t_ready_last = 0.0
        self.reset_counters()
        self._ticker = LoopingCall(self._tick)
        self._ticker.start(0.1, now=False)

    def reset_counters(self) -> None:
        """Zero the per-workload counters (deliveries, samples, CPU)."""
        self.got_r = self.got_s = self.sent = self.nbytes = 0
        self.senders_done = self.n_senders = 0
        self.dropped = 0
        self.behind = 0
        self.t_last = 0.0
        self.t_first_send: Optional[float] = None
        self.t_last_send = 0.0
        self.samples: List[float] = []
        self.cpu0 = cpu_seconds()

    def snapshot(self) -> Dict[str, Any]:
        """The counters, as sent to the coordinator."""
        return {
            "phase": self.phase, "ready": self.ready, "failed": self.failed,
            "inflight": self.inflight, "n_setup": self.n_setup,
            "synced": self.synced, "n_sync": self.n_sync,
            "got_r": self.got_r, "got_s": self.got_s, "sent": self.sent,
            "senders_done": self.senders_done, "n_senders": self.n_senders,
            "nbytes": self.nbytes, "dropped": self.dropped, "behind": self.behind,
            "t_last": self.t_last, "t_first_send": self.t_first_send,
            "t_last_send": self.t_last_send, "t_start": self.t_start,
            "t_ready_last": self.t_ready_last,
            "cpu": cpu_seconds() - self.cpu0, "cpu_total": cpu_seconds(),
        }

    def send(self, kind: str, payload: Optional[Dict[str, Any]] = None) -> None:
        """Send a message to the coordinator."""
        self.conn.send((kind, self.wid, payload or {}))

    def _tick(self) -> None:
        if self.phase is not None:
            self.send("progress", self.snapshot())

    def command(self, message) -> None:
        """Run one command from the coordinator."""
        cmd, payload = message
        try:
            getattr(self, "cmd_" + cmd)(payload)
        except Exception:
            self.send("error", {"traceback": traceback.format_exc()})

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.reactor.callLater(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    # -- setup: connect and log in, a window at a time --------------------------

    def cmd_setup(self, p: Dict[str, Any]) -> None:
        """Connect and log in the given clients, C{window} in flight at once."""
        self.dialect = DIALECTS[p["dialect"]]
        self.host, self.port = p["host"], p["port"]
        self.reset_counters()
        self.pending = collections.deque(p["clients"])
        self.n_setup = len(self.pending)
        self.ready = self.failed = self.inflight = 0
        self.window = max(1, p["window"])
        self.per_source = p.get("per_source", 0)
        self.t_start = time.monotonic()
        self.t_ready_last = self.t_start
        self.phase = "setup"
        self._arm(p["timeout"], self._setup_finish)
        self._launch()
        self._setup_check()

    def _launch(self) -> None:
        while self.inflight < self.window and self.pending:
            idx, name, sender, sampler, *room = self.pending.popleft()
            client = self.Client(self, idx, name, sender, sampler, *room)
            self.clients.append(client)
            self.inflight += 1
            client.connector = self.reactor.connectTCP(
                self.host, self.port, self.Factory(client), timeout=30,
                bindAddress=source_address(self.host, idx, self.per_source))

    def _setup_check(self) -> None:
        if self.phase == "setup" and self.ready + self.failed >= self.n_setup:
            self._setup_finish()

    def _setup_finish(self) -> None:
        if self.phase != "setup":
            return
        self._disarm()
        self.pending.clear()
        self.phase = None
        result = self.snapshot()
        result["timed_out"] = self.n_setup - self.ready - self.failed
        self.send("setup_done", result)

    def token_seen(self, client) -> None:
        """A client saw what it was waiting for (logged in, or synced)."""
        if client.state == "login":
            client.state = "ready"
            self.ready += 1
            self.inflight -= 1
            self.t_ready_last = time.monotonic()
            if self.phase == "setup":
                self._launch()
                self._setup_check()
        elif client.state == "sync":
            client.state = "ready"
            self.synced += 1
            self._sync_check()

    def client_failed(self, client, reason=None) -> None:
        """A connection attempt failed."""
        self.failed += 1
        self.inflight -= 1
        if self.phase == "setup":
            self._launch()
            self._setup_check()

    def client_lost(self, client, old_state: str) -> None:
        """A connection closed (by us at the end, or by the server)."""
        if old_state == "login":
            self.client_failed(client)
        elif old_state in ("ready", "sync") and not getattr(self, "_closing", False):
            self.dropped += 1
            if old_state == "sync":
                self.n_sync -= 1
                self._sync_check()

    # -- sync: every client pings and waits for the answer ---------------------

    def cmd_sync(self, p: Dict[str, Any]) -> None:
        """Have every logged-in client ping and wait for the pong."""
        token = p["token"]
        self.phase = "sync"
        self.synced = 0
        ready = [c for c in self.clients if c.state == "ready"]
        self.n_sync = len(ready)
        ping, pong = self.dialect.ping(token), self.dialect.pong(token)
        for client in ready:
            client.expect(pong, "sync")
            client.transport.write(ping)
        self._arm(p["timeout"], self._sync_finish)
        self._sync_check()

    def _sync_check(self) -> None:
        if self.phase == "sync" and self.synced >= self.n_sync:
            self._sync_finish()

    def _sync_finish(self) -> None:
        if self.phase != "sync":
            return
        self._disarm()
        self.phase = None
        for client in self.clients:
            if client.state == "sync":
                client.state = "ready"
                client.wait = None
        self.send("sync_done", self.snapshot())

    # -- fan-out and paced sending -------------------------------------------------

    def cmd_fanout(self, p: Dict[str, Any]) -> None:
        """Every sender sends C{messages} messages as fast as it can."""
        self.reset_counters()
        self.phase = "fanout"
        senders = [c for c in self.clients if c.sender and c.state == "ready"]
        self.n_senders = len(senders)
        self.send("started", self.snapshot())
        for client in senders:
            self.Sender(client, p["messages"], p["size"]).start()

    def sender_done(self) -> None:
        """One sender has written all its messages."""
        self.senders_done += 1
        self.t_last_send = time.monotonic()

    def cmd_pace(self, p: Dict[str, Any]) -> None:
        """
        Every sender sends C{per_sender} messages at C{rate} messages per
        second each, staggered so that the room sees an even stream.
        """
        from twisted.internet.task import LoopingCall

        self.reset_counters()
        self.phase = "pace"
        senders = [c for c in self.clients if c.sender and c.state == "ready"]
        self.n_senders = len(senders)
        rate, total, size = p["rate"], p["per_sender"], p["size"]
        start = time.monotonic() + 0.05
        self._pacers = []
        for client in senders:
            offset = (p["first_offset"] + p["stride"] * len(self._pacers)) / rate
            self._pacers.append([client, start + offset, 0])
        self._pace_args = (rate, total, size)
        self.send("started", self.snapshot())
        self._pacer = LoopingCall(self._pace)
        self._pacer.start(0.002)

    def _pace(self) -> None:
        rate, total, size = self._pace_args
        now = time.monotonic()
        active = 0
        for pacer in self._pacers:
            client, t0, sent = pacer
            if sent >= total:
                continue
            if client.state == "closed":
                pacer[2] = total
                self.sender_done()
                continue
            active += 1
            if now < t0:
                continue
            due = min(total, int((now - t0) * rate) + 1)
            if due <= sent:
                continue
            if _pending_output(client.transport) > (1 << 20):
                self.behind += 1  # the server is not taking them: wait
                continue
            if self.t_first_send is None:
                self.t_first_send = now
            client.transport.write(message_lines(self.dialect, due - sent, sent, size,
                                                 client.prefix))
            self.sent += due - sent
            pacer[2] = due
            if due >= total:
                self.sender_done()
        if not active:
            self._stop_pacer()

    def _stop_pacer(self) -> None:
        if self._pacer is not None and self._pacer.running:
            self._pacer.stop()
        self._pacer = None

    def cmd_stop(self, p: Dict[str, Any]) -> None:
        """Stop sending and report the final counters and latency samples."""
        self._stop_pacer()
        for client in self.clients:
            if client.producer is not None:
                client.producer.stopProducing()
        self.phase = None
        result = self.snapshot()
        result["samples"] = self.samples
        self.samples = []
        self.send("final", result)

    # -- closing -------------------------------------------------------------------

    def cmd_close(self, p: Dict[str, Any]) -> None:
        """Drop every connection, then report."""
        self._closing = True
        self._stop_pacer()
        self._disarm()
        self.phase = None
        self.pending.clear()
        for client in self.clients:
            if client.state == "closed":
                continue
            if client.transport is not None and client.connected:
                client.transport.abortConnection()
            elif client.connector is not None:
                client.connector.disconnect()
        self._close_deadline = time.monotonic() + 10
        self._close_wait()

    def _close_wait(self) -> None:
        if (any(c.state != "closed" for c in self.clients)
                and time.monotonic() < self._close_deadline):
            self.reactor.callLater(0.05, self._close_wait)
            return
        self.clients = []
        self._closing = False
        self.ready = self.failed = self.inflight = 0
        self.send("closed", self.snapshot())

    def cmd_exit(self, p: Dict[str, Any]) -> None:
        """Stop the reactor: the process ends."""
        self.reactor.stop()


def _worker_main(wid: int, conn) -> None:
    """The entry point of a load-generator process (run by multiprocessing)."""
    raise_nofile_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles ^C
    try:
        from twisted.internet import epollreactor

        epollreactor.install()
    except Exception:
        pass
    from twisted.internet import reactor
    from twisted.internet.interfaces import IReadDescriptor
    from zope.interface import implementer

    worker = _Worker(wid, conn, reactor)

    @implementer(IReadDescriptor)
    class PipeReader:
        """Feeds the coordinator's commands to the worker."""

        def fileno(self) -> int:
            """The pipe from the coordinator."""
            return conn.fileno()

        def doRead(self):
            """Run every command waiting in the pipe."""
            try:
                while conn.poll():
                    worker.command(conn.recv())
            except (EOFError, OSError):
                reactor.removeReader(self)
                if reactor.running:
                    reactor.stop()

        def connectionLost(self, reason) -> None:
            """The coordinator is gone: stop."""
            if reactor.running:
                reactor.stop()

        def logPrefix(self) -> str:
            """Name this reader in logs."""
            return "coordinator"

    reactor.addReader(PipeReader())
    reactor.run()


# -- the coordinator side: the pool of workers -------------------------------------------


class WorkerPool:
    """
    The load-generator processes, driven from the coordinator (which runs
    no reactor): commands go down one pipe per worker, progress and
    results come back up.
    """

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns = []
        self.procs = []
        for wid in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(wid, child), daemon=True,
                               name=f"bench-worker-{wid}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self.progress: List[Dict[str, Any]] = [{} for _ in range(count)]

    def __len__(self) -> int:
        return len(self.conns)

    def send_each(self, cmd: str, payloads: Sequence[Dict[str, Any]]) -> None:
        """
        Send C{cmd} to every worker, each with its own payload.  The
        counters of the previous phase are forgotten: until a worker reports
        again, it counts as zero.
        """
        self.progress = [{} for _ in self.conns]
        for conn, payload in zip(self.conns, payloads):
            conn.send((cmd, payload))

    def send_all(self, cmd: str, payload: Optional[Dict[str, Any]] = None) -> None:
        """Send C{cmd} with the same payload to every worker."""
        self.send_each(cmd, [payload or {}] * len(self.conns))

    def _receive(self, timeout: float, wanted: Optional[str], results: list) -> None:
        for conn in multiprocessing.connection.wait(self.conns, timeout=timeout):
            try:
                kind, wid, payload = conn.recv()
            except (EOFError, OSError):
                raise BenchError("a load-generator process died") from None
            if kind == "error":
                raise BenchError("a load-generator process failed:\n"
                                 + payload["traceback"])
            if kind != "progress" or "phase" in payload:
                self.progress[wid] = payload
            if wanted is not None and kind == wanted:
                results[wid] = payload

    def gather(self, kind: str, timeout: float,
               tick: Optional[Callable[[], None]] = None) -> List[Dict[str, Any]]:
        """Wait for every worker's C{kind} reply, showing progress meanwhile."""
        results: List[Optional[Dict[str, Any]]] = [None] * len(self.conns)
        deadline = time.monotonic() + timeout
        while any(r is None for r in results):
            if time.monotonic() > deadline:
                raise BenchError(f"the load generator did not answer {kind!r} in time")
            self._receive(0.25, kind, results)
            if tick is not None:
                tick()
        return results  # type: ignore[return-value]

    def pump(self, seconds: float) -> None:
        """Take in progress reports for up to C{seconds}."""
        self._receive(seconds, None, [])

    def total(self, key: str) -> float:
        """Sum a counter over the workers' latest reports."""
        return sum(p.get(key) or 0 for p in self.progress)

    def close(self) -> None:
        """Stop the workers."""
        for conn in self.conns:
            try:
                conn.send(("exit", {}))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
