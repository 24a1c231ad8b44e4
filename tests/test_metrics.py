"""
The metrics (L{chatservice.metrics}): the collector reads the chat's own
counters at scrape time, on a fake clock and fake transports; the
event-loop lag monitor on a L{task.Clock}; the histogram; readiness with a
real store.
"""

import re
import sqlite3

import pytest
import pytest_twisted
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task

from chatservice.core.limits import Limits
from chatservice.histogram import Histogram
from chatservice.looplag import LoopLagMonitor
from chatservice.metrics import make_registry
from chatservice.metricsweb import readiness
from chatservice.persistence.writer import BatchReport
from chatservice.persistence.store import ChatStore
from conftest import FakeClient, make_factory
from netclient import wait


def scrape(registry):
    """Return C{{(sample name, sorted labels): value}} of one scrape of C{registry}."""
    text = generate_latest(registry).decode("utf-8")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


def login(factory, name):
    """A fake connection logged in as C{name}, its output taken."""
    client = FakeClient(factory)
    client.send(name)
    assert client.protocol.state == "chatting", client.lines()
    client.take()
    return client


def test_scrape_reads_the_chats_counters(clock):
    """Users, connections, logins, lines by kind, deliveries and bytes are Chat.stats()'s numbers."""
    factory = make_factory(clock, limits=Limits(flood_rate=0, max_connections=50))
    chat = factory.chat
    registry = make_registry(chat, process=False)
    before = scrape(registry)
    assert before[("chatservice_users", (("frontend", "line"),))] == 0
    assert before[("chatservice_lines_total", (("kind", "say"),))] == 0
    alice, bob, carol = login(factory, "alice"), login(factory, "bob"), login(factory, "carol")
    FakeClient(factory)  # connected, not logged in
    alice.send("hello", "/me waves", "/msg bob psst")
    found = scrape(registry)
    assert found[("chatservice_connections", (("frontend", "line"),))] == 4
    assert found[("chatservice_users", (("frontend", "line"),))] == 3
    assert found[("chatservice_logins_total", ())] == 3
    assert found[("chatservice_connections_accepted_total", ())] == 4
    assert found[("chatservice_max_connections", ())] == 50
    assert found[("chatservice_lines_total", (("kind", "say"),))] == 1
    assert found[("chatservice_lines_total", (("kind", "act"),))] == 1
    assert found[("chatservice_lines_total", (("kind", "private"),))] == 1
    assert found[("chatservice_rooms", ())] == 1
    stats = chat.stats()
    assert found[("chatservice_deliveries_total", ())] == stats["deliveries"] > 0
    assert found[("chatservice_delivered_bytes_total", ())] == stats["bytes_relayed"] > 0
    assert stats["lines_relayed"] == 3
    assert ("chatservice_database_up", ()) not in found  # no store
    assert ("chatservice_event_loop_lag_seconds_count", ()) not in found  # no monitor
    assert bob.take() and carol.take()


def test_deliveries_are_counted_once_per_batch():
    """Three lines in one read to a room of three are two writes (one per other member)."""
    clock = task.Clock()
    factory = make_factory(clock, limits=Limits(flood_rate=0))
    alice, bob, carol = login(factory, "alice"), login(factory, "bob"), login(factory, "carol")
    before, seen = factory.chat.stats(), len(bob.output()) + len(carol.output())
    alice.feed(b"one\ntwo\nthree\n")
    after = factory.chat.stats()
    assert after["deliveries"] - before["deliveries"] == 2
    written = len(bob.output()) + len(carol.output()) - seen
    assert after["bytes_relayed"] - before["bytes_relayed"] == written > 0
    assert bob.take()[-3:] == ["<alice> one", "<alice> two", "<alice> three"]


def test_disconnects_and_refusals_are_counted_by_reason():
    """A flood kick, too many over-long lines, a slow reader, a kick and a full server: once each."""
    clock = task.Clock()
    factory = make_factory(clock, limits=Limits(
        flood_burst=3, flood_rate=1, flood_kick=2, max_line_length=20, max_long_lines=1,
        max_output=500, max_connections=6, max_per_address=0))
    chat = factory.chat
    registry = make_registry(chat, process=False)
    flooder = login(factory, "flooder")
    clock.advance(10)
    flooder.feed(b"x\n" * 50)
    assert flooder.closed
    longer = login(factory, "longer")
    longer.feed(b"y" * 30 + b"\n" + b"z" * 30 + b"\n")
    assert longer.closed
    slow, talker = login(factory, "slow"), login(factory, "talker")
    slow.protocol.pauseProducing()
    for _ in range(20):
        clock.advance(1)
        talker.send("w" * 15)
    assert slow.transport.disconnected
    kicked = login(factory, "kicked")
    chat.kick("kicked", "testing")
    assert kicked.closed
    for _ in range(6 - len(chat.clients)):
        FakeClient(factory)
    full = FakeClient(factory)
    assert full.closed and "The server is full" in full.lines()[-1]
    found = scrape(registry)
    reasons = {labels[0][1]: value for (name, labels), value in found.items()
               if name == "chatservice_disconnects_total"}
    assert reasons == {"flood": 1, "long_lines": 1, "sendq": 1, "kicked": 1, "idle": 0,
                       "login_timeout": 0, "ping_timeout": 0, "passwords": 0}
    assert found[("chatservice_connections_refused_total", (("reason", "server_full"),))] == 1
    assert found[("chatservice_connections_refused_total", (("reason", "per_address"),))] == 0
    assert chat.stats()["disconnects_flood"] == 1


def test_login_and_idle_timeouts_are_counted():
    """A newcomer who never names themselves and an idle user: one disconnect each."""
    clock = task.Clock()
    factory = make_factory(clock, limits=Limits(login_timeout=5, idle_timeout=30))
    newcomer = FakeClient(factory)
    idler = login(factory, "idler")
    clock.advance(6)
    assert newcomer.closed and not idler.closed
    clock.advance(30)
    assert idler.closed
    stats = factory.chat.stats()
    assert (stats["disconnects_login_timeout"], stats["disconnects_idle"]) == (1, 1)


def test_each_service_has_its_own_registry(clock):
    """Two chats in one process get separate registries; the global one gets nothing."""
    one, two = make_factory(clock), make_factory(clock)
    login(one, "alice")
    first, second = make_registry(one.chat), make_registry(two.chat)
    assert scrape(first)[("chatservice_users", (("frontend", "line"),))] == 1
    assert scrape(second)[("chatservice_users", (("frontend", "line"),))] == 0
    assert REGISTRY.get_sample_value("chatservice_users", {"frontend": "line"}) is None
    assert any(name == "process_cpu_seconds_total" for name, _ in scrape(first))


def test_collector_counts_pending_output():
    """Total and largest unread output come from the transports at scrape time."""

    class Backed:
        """A transport holding C{pending} unread bytes, as a TCP transport reports them."""

        def __init__(self, pending):
            self.dataBuffer, self.offset, self._tempDataLen = b"x" * pending, 0, 0

    class Client:
        frontend = "line"

        def __init__(self, pending):
            self.transport = Backed(pending)

    clock = task.Clock()
    chat = make_factory(clock).chat
    chat.clients.update({Client(100): None, Client(2500): None})
    found = scrape(make_registry(chat, process=False))
    assert found[("chatservice_pending_output_bytes", ())] == 2600
    assert found[("chatservice_pending_output_max_bytes", ())] == 2500


def test_histogram_buckets_are_cumulative():
    """A value on a bound falls in that bucket; +Inf holds everything."""
    histogram = Histogram([0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 7):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert (histogram.count, histogram.sum) == (4, pytest.approx(7.65))


def test_loop_lag_measures_how_late_the_timer_fires():
    """On time: lag 0; a reactor blocked for 2 s past the beat: one call 2 s late."""
    clock = task.Clock()
    monitor = LoopLagMonitor(clock, interval=0.5)
    monitor.start()
    clock.advance(0.5)
    assert (monitor.histogram.count, monitor.last) == (1, 0)
    clock.advance(2.5)  # the next beat was due at 1.0: it fires at 3.0
    assert monitor.histogram.count == 2
    assert monitor.last == pytest.approx(2.0)
    assert dict(monitor.histogram.cumulative())["1.0"] == 1
    assert dict(monitor.histogram.cumulative())["2.5"] == 2
    monitor.stop()
    clock.advance(10)
    assert monitor.histogram.count == 2 and not clock.getDelayedCalls()


def test_lag_histogram_is_exposed(clock):
    """The collector yields the monitor's histogram as chatservice_event_loop_lag_seconds."""
    chat = make_factory(clock).chat
    monitor = LoopLagMonitor(clock, interval=1)
    monitor.start()
    clock.advance(1)
    clock.advance(1.3)
    found = scrape(make_registry(chat, monitor, process=False))
    assert found[("chatservice_event_loop_lag_seconds_count", ())] == 2
    assert found[("chatservice_event_loop_lag_seconds_sum", ())] == pytest.approx(0.3)
    assert found[("chatservice_event_loop_lag_seconds_bucket", (("le", "0.25"),))] == 1
    assert found[("chatservice_event_loop_lag_seconds_bucket", (("le", "0.5"),))] == 2
    monitor.stop()


def test_readiness_without_a_store():
    """No store: always ready."""
    assert readiness(None) is None


@pytest_twisted.inlineCallbacks
def test_readiness_follows_the_store(tmp_path):
    """A running store is ready; one whose last batch failed, or a stuck or stopped writer, is not."""
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    store.open()
    try:
        yield wait(store.flush())
        assert readiness(store) is None
        assert store.batches >= 1 and store.commit_seconds.count == store.batches
        assert readiness(store, max_queue=-1).startswith("the database writer is 0 writes behind")
        failed = BatchReport()  # what the writer thread reports of a failed batch
        failed.error = sqlite3.OperationalError("database is locked")
        store._account_for(failed)
        assert readiness(store) == "the database cannot write: SQLite failed (database is locked)"
        assert store.batches_failed == 1
        recovered = BatchReport()
        recovered.recovered = True
        store._account_for(recovered)
        assert readiness(store) is None and store.last_error is None
        store.commit_started = 100.0
        assert readiness(store, now=lambda: 112.0) == (
            "the database writer has been in one transaction for 12 s")
        store.commit_started = None
        registry = make_registry(make_factory(task.Clock(), store=store).chat, process=False)
        assert scrape(registry)[("chatservice_database_up", ())] == 1
    finally:
        yield wait(store.close())
    assert readiness(store) == "the database writer has stopped"
    assert scrape(registry)[("chatservice_database_up", ())] == 0


def test_admin_stats_the_log_line_and_metrics_agree(capsys):
    """The admin shell's stats() prints the same counters the collector exposes."""
    from chatservice.admin.namespace import make_namespace

    clock = task.Clock()
    factory = make_factory(clock, limits=Limits(flood_burst=2, flood_rate=1, flood_kick=1))
    flooder = login(factory, "flooder")
    flooder.feed(b"x\n" * 10)
    assert flooder.closed
    found = scrape(make_registry(factory.chat, process=False))
    make_namespace(factory.chat, clock)["stats"]()
    printed = capsys.readouterr().out
    assert found[("chatservice_disconnects_total", (("reason", "flood"),))] == 1
    assert re.search(r"disconnects flood +1\n", printed), printed
    assert re.search(r"lines say +1\n", printed), printed
    assert found[("chatservice_lines_total", (("kind", "say"),))] == 1


def test_irc_connections_are_labelled_and_their_disconnects_counted():
    """IRC clients count under frontend="irc"; an IRC flood kick counts as flood, once."""
    from ircclient import IRCFakeClient, irc_factory

    clock = task.Clock()
    factory = make_factory(clock, limits=Limits(flood_burst=5, flood_rate=1, flood_kick=3))
    registry = make_registry(factory.chat, frontends=("line", "irc"), process=False)
    login(factory, "alice")
    ircf = irc_factory(factory)
    bob, carol = IRCFakeClient(ircf), IRCFakeClient(ircf)
    bob.register("bob")
    carol.register("carol")
    IRCFakeClient(ircf)  # connected, not registered
    found = scrape(registry)
    assert found[("chatservice_connections", (("frontend", "irc"),))] == 3
    assert found[("chatservice_users", (("frontend", "irc"),))] == 2
    assert found[("chatservice_users", (("frontend", "line"),))] == 1
    carol.send(*["PING :%d" % n for n in range(20)])
    assert carol.closed
    found = scrape(registry)
    assert found[("chatservice_disconnects_total", (("reason", "flood"),))] == 1
    assert found[("chatservice_users", (("frontend", "irc"),))] == 1
