"""
The workloads (fanout, latency, bigroom, capacity, storm), run by L{Bench}
with a L{WorkerPool}, and the live progress line.
"""

import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from chatservice.bench.errors import BenchError
from chatservice.bench.servers import Server
from chatservice.bench.system import percentile
from chatservice.bench.workers import WorkerPool


# -- progress display ---------------------------------------------------------------


class Progress:
    """A live status line on stderr (when it is a terminal, or asked for)."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._shown = 0
        self._last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        """Replace the status line with C{text} (at most ten times a second)."""
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        text = text[:150]
        sys.stderr.write("\r" + text + " " * max(0, self._shown - len(text)))
        sys.stderr.flush()
        self._shown = len(text)

    def note(self, text: str) -> None:
        """Print a permanent line (clearing the status line first)."""
        if self.live and self._shown:
            sys.stderr.write("\r" + " " * self._shown + "\r")
            self._shown = 0
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


#: Seconds of quiet before the bigroom's lines, to measure what the idle
#: server costs with all its members connected.
IDLE_SECONDS = 2.0


def _n(value: float) -> str:
    return f"{value:,.0f}"


# -- the workloads ---------------------------------------------------------------------


class Bench:
    """
    Runs the workloads against the servers with one pool of load-generator
    processes, and collects the results.
    """

    def __init__(self, config: Dict[str, Any], pool: WorkerPool, progress: Progress) -> None:
        self.c = config
        self.pool = pool
        self.progress = progress
        self._round = 0

    # -- building blocks ------------------------------------------------------

    def _assign(self, count: int, senders: int, samplers: int, tag: str,
                room_of: Optional[Callable[[int], str]] = None) -> List[List[tuple]]:
        """
        Spread C{count} clients over the workers, round robin (each in the
        room C{room_of(index)}, or in the default room).
        """
        receivers = count - senders
        k = min(samplers, receivers)
        if k <= 0:
            sample_idx = set()
        elif k == 1:
            sample_idx = {senders}
        else:
            sample_idx = {senders + round(j * (receivers - 1) / (k - 1)) for j in range(k)}
        per = [[] for _ in range(len(self.pool))]
        for idx in range(count):
            client = (idx, f"{tag}{idx:05d}", idx < senders, idx in sample_idx)
            per[idx % len(per)].append(client if room_of is None else client + (room_of(idx),))
        return per

    def _setup(self, server: Server, per_worker: List[List[tuple]], what: str) -> Dict[str, Any]:
        wanted = sum(len(x) for x in per_worker)
        # More connections in flight than the server's accept queue holds
        # would measure the kernel's 1 s SYN retransmission, not the server.
        total_window = self.c["window"]
        if server.backlog and not self.c.get("ignore_backlog"):
            total_window = min(total_window, server.backlog)
        window = max(1, total_window // len(self.pool))
        timeout = self.c["timeout"]
        payloads = [{"dialect": server.dialect, "host": server.host, "port": server.port,
                     "clients": clients, "window": window, "timeout": timeout,
                     "per_source": self.c["per_source"]}
                    for clients in per_worker]
        t0 = time.monotonic()
        self.pool.send_each("setup", payloads)

        def tick() -> None:
            """Show logins so far on the progress line."""
            ready, failed = self.pool.total("ready"), self.pool.total("failed")
            elapsed = time.monotonic() - t0
            rate = ready / elapsed if elapsed > 0 else 0
            self.progress.show(f"[{server.label}] {what}: logged in {_n(ready)}/{_n(wanted)}"
                               f"  {_n(rate)}/s  failed {_n(failed)}  {elapsed:.1f} s")

        results = self.pool.gather("setup_done", timeout + 30, tick)
        ready = sum(r["ready"] for r in results)
        if not ready:
            raise BenchError(f"no client could log in to {server.label} "
                             f"(see its log; {sum(r['failed'] for r in results)} failed)")
        start = min(r["t_start"] for r in results)
        end = max(r["t_ready_last"] for r in results)
        return {"wanted": wanted, "ready": ready,
                "failed": sum(r["failed"] for r in results),
                "timed_out": sum(r["timed_out"] for r in results),
                "seconds": end - start, "window": window * len(self.pool),
                "per_second": ready / (end - start) if end > start else 0.0,
                "generator_cpu": sum(r["cpu"] for r in results)}

    def _sync(self, server: Server) -> Dict[str, Any]:
        self._round += 1
        timeout = self.c["timeout"]
        self.pool.send_all("sync", {"token": f"S{self._round}", "timeout": timeout})
        results = self.pool.gather(
            "sync_done", timeout + 30,
            lambda: self.progress.show(f"[{server.label}] waiting for the server to catch up: "
                                       f"{_n(self.pool.total('synced'))}"
                                       f"/{_n(self.pool.total('n_sync'))}"))
        return {"synced": sum(r["synced"] for r in results),
                "expected": sum(r["n_sync"] for r in results)}

    def _close(self) -> None:
        self.pool.send_all("close")
        self.pool.gather("closed", 60)

    def _require(self, setup: Dict[str, Any], server: Server, what: str) -> None:
        if setup["ready"] < setup["wanted"]:
            raise BenchError(f"only {setup['ready']} of {setup['wanted']} clients could log "
                             f"in to {server.label} for {what} ({setup['failed']} failed, "
                             f"{setup['timed_out']} timed out)")

    def _measure_sending(self, server: Server, what: str, senders: int, receivers: int,
                         per_sender: int, start: Callable[[], None],
                         expected_copies: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
        """
        Start the senders, wait until every copy has arrived (or nothing
        has arrived for C{quiet} seconds after the last send, or the hard
        timeout), stop, and account for every message.  The copies expected
        are C{(to receivers, to other senders)}: by default, those of one
        room holding everyone.
        """
        if expected_copies is None:
            expected_copies = (senders * per_sender * receivers,
                               senders * per_sender * (senders - 1))
        expected_r, expected_s = expected_copies
        expected = expected_r + expected_s
        timeout, quiet = self.c["timeout"], self.c["quiet"]
        cpu0, hwm0 = server.cpu(), server.hwm()
        t0 = time.monotonic()
        start()
        self.pool.gather("started", 60)
        last_total, last_change, outcome = -1, t0, "complete"
        last_cpu = cpu0
        while True:
            self.pool.pump(0.05)
            now = time.monotonic()
            total = self.pool.total("got_r") + self.pool.total("got_s")
            cpu = server.cpu()
            # "quiet" means nothing arrives and the server is idle (a slow
            # server may chew on one read for seconds before writing anything)
            busy = cpu is not None and last_cpu is not None and cpu - last_cpu > 0.01
            last_cpu = cpu
            if total != last_total or busy:
                last_total, last_change = total, now
            done = self.pool.total("senders_done")
            elapsed = now - t0
            self.progress.show(
                f"[{server.label}] {what}: delivered {_n(total)}/{_n(expected)} "
                f"({_n(total / elapsed if elapsed else 0)}/s)  sent "
                f"{_n(self.pool.total('sent'))}/{_n(senders * per_sender)}"
                f"  generator CPU {self.pool.total('cpu') / elapsed * 100 if elapsed else 0:.0f}%"
                f"  {elapsed:.1f} s")
            if total >= expected and done >= senders:
                break
            if done >= senders and now - last_change > quiet:
                outcome = f"nothing more arrived for {quiet:g} s (server idle)"
                break
            if elapsed > timeout:
                outcome = f"hard timeout ({timeout:g} s)"
                break
        t_end = time.monotonic()
        cpu1 = server.cpu()
        self.pool.send_all("stop")
        finals = self.pool.gather("final", 60)
        got_r = sum(f["got_r"] for f in finals)
        got_s = sum(f["got_s"] for f in finals)
        firsts = [f["t_first_send"] for f in finals if f["t_first_send"] is not None]
        t_first = min(firsts) if firsts else t0
        t_last = max(f["t_last"] for f in finals) or t_first
        t_last_send = max(f["t_last_send"] for f in finals) or t_first
        samples = sorted(s for f in finals for s in f["samples"])
        wall = t_end - t0
        span = t_last - t_first if got_r + got_s and t_last > t_first else wall
        gen_cpu = sum(f["cpu"] for f in finals)
        server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        result = {
            "receivers": receivers, "senders": senders, "messages_per_sender": per_sender,
            "messages_sent": sum(f["sent"] for f in finals),
            "deliveries": got_r, "deliveries_expected": expected_r,
            "sender_copies": got_s, "sender_copies_expected": expected_s,
            "lost": max(0, expected - got_r - got_s),
            "extra": max(0, got_r + got_s - expected),
            "outcome": outcome, "seconds": span,
            "send_seconds": max(t_last_send - t_first, 0.0),
            "deliveries_per_second": got_r / span,
            "latency_samples": len(samples),
            "latency_p50_ms": _ms(percentile(samples, 0.50)),
            "latency_p99_ms": _ms(percentile(samples, 0.99)),
            "latency_max_ms": _ms(samples[-1] if samples else None),
            "disconnected_by_server": sum(f["dropped"] for f in finals),
            "sender_waits_for_backpressure": sum(f["behind"] for f in finals),
            "bytes_received": sum(f["nbytes"] for f in finals),
            # CPU as a share of one core over the wall time the CPU was read
            # across (start to "all arrived", which the coordinator sees up to
            # 0.1 s late), and per delivery, which does not depend on timing
            "wall_seconds": wall,
            "generator_cpu_seconds": gen_cpu,
            "generator_cpu_percent": gen_cpu / wall * 100,
            "generator_max_process_cpu_percent": max(f["cpu"] for f in finals) / wall * 100,
            "generator_cpu_us_per_delivery": (gen_cpu / (got_r + got_s) * 1e6
                                              if got_r + got_s else None),
            "server_cpu_seconds": server_cpu,
            "server_cpu_percent": server_cpu / wall * 100 if server_cpu is not None else None,
            "server_cpu_us_per_delivery": (server_cpu / (got_r + got_s) * 1e6
                                           if server_cpu is not None and got_r + got_s else None),
            "server_peak_rss_mib": _mib(server.hwm()),
            "server_rss_mib": _mib(server.rss()),
            "server_peak_rss_before_mib": _mib(hwm0),
        }
        return result

    def _warm_then_measure(self, server: Server, what: str, *args, **kwargs) -> Dict[str, Any]:
        """
        L{_measure_sending}, after C{warmup} unmeasured passes of the same
        sending (each waits until all its copies have arrived).
        """
        passes = self.c.get("warmup", 0)
        for done in range(passes):
            warm = self._measure_sending(server, f"{what} warm-up {done + 1}/{passes}",
                                         *args, **kwargs)
            if warm["lost"]:
                raise BenchError(f"{what}: the warm-up pass lost {warm['lost']:,} copies")
        result = self._measure_sending(server, what, *args, **kwargs)
        result["warmup_passes"] = passes
        return result

    # -- the four workloads ------------------------------------------------------

    def fanout(self, server: Server) -> Dict[str, Any]:
        """N clients in one room, S senders x M messages as fast as possible."""
        n, s, m = self.c["clients"], self.c["senders"], self.c["messages"]
        s = min(s, n)
        setup = self._setup(server, self._assign(n, s, self.c["samplers"], "f"), "fanout setup")
        self._require(setup, server, "fanout")
        self._sync(server)
        result = self._warm_then_measure(
            server, "fanout", s, n - s, m,
            lambda: self.pool.send_all("fanout", {"messages": m, "size": self.c["size"]}))
        result["clients"] = n
        result["login_seconds"] = setup["seconds"]
        return result

    def _paced(self, server: Server, n: int, s: int, msg_rate: float, tag: str,
               before: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
        """
        C{n} clients in one room, C{s} of them saying C{msg_rate} lines a
        second in all, evenly paced, for C{duration} seconds.
        """
        receivers = n - s
        per_sender = max(1, round(msg_rate * self.c["duration"] / s))
        what = {"l": "latency", "b": "bigroom"}[tag]
        setup = self._setup(server, self._assign(n, s, self.c["samplers"], tag), f"{what} setup")
        self._require(setup, server, what)
        self._sync(server)
        if before is not None:
            before()
        # sender i of the room starts i/(S*r) s late so the room sees an even stream
        payloads = []
        for wid in range(len(self.pool)):
            payloads.append({"rate": msg_rate / s, "per_sender": per_sender,
                             "size": self.c["size"], "first_offset": wid / s,
                             "stride": len(self.pool) / s})
        result = self._measure_sending(server, what, s, receivers, per_sender,
                                       lambda: self.pool.send_each("pace", payloads))
        result["clients"] = n
        result["login_seconds"] = setup["seconds"]
        return result

    def rooms(self, server: Server) -> Dict[str, Any]:
        """
        C{rooms_clients} clients spread evenly over C{rooms_count} rooms,
        C{rooms_senders} of them (in different rooms while there are rooms
        enough) sending C{rooms_messages} messages each as fast as the
        server takes them: deliveries per second when the work is many
        small fan-outs rather than one large one.
        """
        n, r = self.c["rooms_clients"], min(self.c["rooms_count"], self.c["rooms_clients"])
        s, m = min(self.c["rooms_senders"], n), self.c["rooms_messages"]

        def room_of(idx: int) -> str:
            return f"bench{idx % r:03d}"

        members = [0] * r
        senders_in = [0] * r
        for idx in range(n):
            members[idx % r] += 1
            senders_in[idx % r] += idx < s
        expected_r = sum(m * (members[idx % r] - senders_in[idx % r]) for idx in range(s))
        expected_s = sum(m * (senders_in[idx % r] - 1) for idx in range(s))
        setup = self._setup(server, self._assign(n, s, self.c["samplers"], "r", room_of),
                            "rooms setup")
        self._require(setup, server, "rooms")
        self._sync(server)
        result = self._warm_then_measure(
            server, "rooms", s, n - s, m,
            lambda: self.pool.send_all("fanout", {"messages": m, "size": self.c["size"]}),
            expected_copies=(expected_r, expected_s))
        result["clients"] = n
        result["rooms"] = r
        result["login_seconds"] = setup["seconds"]
        return result

    def latency(self, server: Server) -> Dict[str, Any]:
        """A paced offered rate of deliveries per second; latency percentiles."""
        n, s = self.c["latency_clients"], min(self.c["latency_senders"], self.c["latency_clients"])
        msg_rate = self.c["rate"] / max(n - s, 1)  # messages/s into the room
        result = self._paced(server, n, s, msg_rate, "l")
        result["offered_deliveries_per_second"] = self.c["rate"]
        sent_span = result["send_seconds"]
        result["achieved_offered_per_second"] = (
            result["messages_sent"] * (n - s) / sent_span if sent_span > 0 else None)
        return result

    def bigroom(self, server: Server) -> Dict[str, Any]:
        """
        One room of C{bigroom_clients} members, one of them saying
        C{bigroom_rate} lines a second: the server CPU each line costs
        (beyond what the idle server costs with everyone connected, measured
        just before) and how late it reaches the members.
        """
        n = self.c["bigroom_clients"]
        idle: Dict[str, Optional[float]] = {}

        def measure_idle() -> None:
            time.sleep(0.5)  # batched join notices go out first
            cpu0 = server.cpu()
            time.sleep(IDLE_SECONDS)
            cpu1 = server.cpu()
            idle["rate"] = (None if cpu0 is None or cpu1 is None
                            else (cpu1 - cpu0) / IDLE_SECONDS)

        result = self._paced(server, n, 1, self.c["bigroom_rate"], "b", before=measure_idle)
        lines, cpu, rate = result["messages_sent"], result["server_cpu_seconds"], idle.get("rate")
        result["lines_per_second"] = self.c["bigroom_rate"]
        result["server_idle_cpu_percent"] = None if rate is None else rate * 100
        if lines and cpu is not None and rate is not None:
            per_line = max(0.0, cpu - rate * result["wall_seconds"]) / lines
            result["server_cpu_ms_per_line"] = per_line * 1000
            result["server_cpu_us_per_member"] = per_line / max(n - 1, 1) * 1e6
        else:
            result["server_cpu_ms_per_line"] = result["server_cpu_us_per_member"] = None
        return result

    def capacity(self, server: Server) -> Dict[str, Any]:
        """K idle logged-in clients; server memory per connection."""
        k = self.c["capacity"]
        time.sleep(0.5)
        rss0, cpu0 = server.rss(), server.cpu()
        setup = self._setup(server, self._assign(k, 0, 0, "c"), "capacity")
        cpu1 = server.cpu()
        sync = self._sync(server) if setup["ready"] else {"synced": 0}
        time.sleep(2.5)  # batched join notices, if any, go out
        rss1 = server.rss()
        per = (rss1 - rss0) / setup["ready"] if rss0 and rss1 and setup["ready"] else None
        return {
            "clients": k, "logged_in": setup["ready"], "failed": setup["failed"],
            "timed_out": setup["timed_out"],
            "lost": k - setup["ready"] + (setup["ready"] - sync["synced"]),
            # only a complete run has a "time to log in all"
            "login_seconds": setup["seconds"] if setup["ready"] == k else None,
            "gave_up_after_seconds": None if setup["ready"] == k else setup["seconds"],
            "logins_per_second": setup["per_second"],
            "within_30_s": setup["ready"] == k and setup["seconds"] <= 30,
            "server_rss_before_mib": _mib(rss0), "server_rss_after_mib": _mib(rss1),
            "server_rss_per_connection_kib": per / 1024 if per is not None else None,
            "server_peak_rss_mib": _mib(server.hwm()), "window": setup["window"],
            "server_cpu_percent": ((cpu1 - cpu0) / setup["seconds"] * 100
                                   if cpu0 is not None and cpu1 is not None
                                   and setup["seconds"] else None),
            "generator_cpu_seconds": setup["generator_cpu"],
            "generator_cpu_percent": (setup["generator_cpu"] / setup["seconds"] * 100
                                      if setup["seconds"] else None),
        }

    def storm(self, server: Server) -> Dict[str, Any]:
        """L clients connect and log in as fast as the server admits them."""
        count = self.c["storm"]
        cpu0 = server.cpu()
        setup = self._setup(server, self._assign(count, 0, 0, "s"), "login storm")
        cpu1 = server.cpu()
        return {
            "clients": count, "logged_in": setup["ready"], "failed": setup["failed"],
            "timed_out": setup["timed_out"], "lost": count - setup["ready"],
            "seconds": setup["seconds"], "logins_per_second": setup["per_second"],
            "window": setup["window"],
            "generator_cpu_seconds": setup["generator_cpu"],
            "generator_cpu_percent": (setup["generator_cpu"] / setup["seconds"] * 100
                                      if setup["seconds"] else None),
            "server_cpu_percent": ((cpu1 - cpu0) / setup["seconds"] * 100
                                   if cpu0 is not None and cpu1 is not None
                                   and setup["seconds"] else None),
        }

    def run(self, server: Server, workload: str) -> Dict[str, Any]:
        """Run one workload against a fresh instance of C{server}."""
        server.start()
        server.backlog = server.listen_backlog()
        try:
            return getattr(self, workload)(server)
        finally:
            try:
                self._close()
            finally:
                server.stop()


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds * 1000, 3)


def _mib(value: Optional[int]) -> Optional[float]:
    return None if value is None else round(value / (1024 * 1024), 1)
