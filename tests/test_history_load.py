"""
C{/history} under load: what a long read costs against flood control, the
bounds on reads of the database (one per user, C{--max-history-reads} in
all), that such a read shows exactly the lines said before it, and, over
real TCP to a C{twistd} subprocess, that a crowd asking for 500 lines at
the rate flood control allows does not hold up the chat in another room.
"""

import re
import signal
import threading
import time

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.internet.protocol import Protocol

from chatservice.persistence import queries
from chatservice.core.limits import Limits
from chatservice.persistence.store import ChatStore
from conftest import FakeClient, make_factory
from netclient import TIMEOUT, LineClient, wait, wait_until
from twistd_process import EXIT_TIMEOUT, log_in, start_twistd

BUSY = "!! The server is busy; try /history again in a moment."
STILL_COMING = ("!! Your previous /history is still on its way; wait for it, then try "
                "/history again.")


@pytest.fixture
def chat_over_store(tmp_path):
    """
    Return C{make(limits, batch_interval, seeded)}: a L{ChatFactory} on a
    fake clock over a real L{ChatStore} (on the real reactor) whose #lobby
    has C{seeded} lines of history, and a function that connects a
    L{FakeClient} logged in as a name.  Everything is closed at the end.
    """
    from twisted.internet import reactor

    made = []

    def make(limits: Limits, batch_interval: float = 0.01, seeded: int = 0):
        store = ChatStore(str(tmp_path / "chat.db"), reactor, batch_interval=batch_interval)
        store.open()
        for i in range(seeded):
            store.record_line("lobby", 1000.0 + i, "say", "seed", f"old line {i}")
        clock = task.Clock()
        factory = make_factory(clock=clock, limits=limits, store=store)
        clients = []
        made.append((store, clients))

        def connect(name: str) -> FakeClient:
            client = FakeClient(factory)
            client.send(name)
            assert client.protocol.state == "chatting", client.lines()
            clients.append(client)
            return client

        return factory, clock, connect

    yield make
    for store, clients in made:
        for client in clients:
            client.lose()
        pytest_twisted.blockon(store.close().addTimeout(TIMEOUT, reactor))


def history_answers(client):
    """The 'History of' lines the client got so far, but for the replay at login."""
    return [line for line in client.lines() if line.startswith("-- History of")
            and not line.endswith("last 20 lines:")]


@pytest_twisted.inlineCallbacks
def test_a_long_history_costs_more_against_flood_control(chat_over_store):
    """
    /history N takes ceil(N / 50) lines of the flood-control bucket (20
    lines, 5 a second by default); past what the bucket holds it is
    refused with a line that says when to try again, and the refusal is no
    flood: nothing is dropped, nobody is disconnected.
    """
    factory, clock, connect = chat_over_store(Limits(login_timeout=0), seeded=600)
    alice = connect("alice")
    yield wait(factory.chat.store.flush())
    alice.take()
    # The bucket holds 20 lines; the name took 1.
    alice.send("/history 500")  # 1 + 9: 9 left
    yield wait_until(lambda: history_answers(alice))
    alice.send(*["/ping"] * 5)  # 4 left
    alice.take()
    alice.send("/history 500")  # the line takes 1; the other 9 are not there
    assert alice.take() == [
        "!! Slow down: /history 500 counts as 10 lines against flood control. Try again "
        "in 2 seconds, or ask for fewer lines."]
    alice.send("/history 100")  # 1 + 1: fits, 0 left
    yield wait_until(lambda: len(history_answers(alice)) == 2)
    clock.advance(2)  # 10 more
    alice.send("/history 500")
    yield wait_until(lambda: len(history_answers(alice)) == 3)
    assert not [line for line in alice.lines() if "sending more than" in line]
    assert not alice.closed


@pytest_twisted.inlineCallbacks
def test_one_history_read_per_user_and_a_bound_on_all(chat_over_store):
    """
    A /history that reads the database is one per user at a time, and
    --max-history-reads at a time for everyone; past either the user is
    told what to do and the flood-control lines are given back.  Short
    ones (from memory) are never refused.
    """
    factory, clock, connect = chat_over_store(Limits(login_timeout=0, max_history_reads=2),
                                              batch_interval=0.3, seeded=200)
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    yield wait(factory.chat.store.flush())
    for client in (alice, bob, carol):
        client.take()
    alice.send("/history 100")
    alice.send("/history 100")
    assert alice.take() == [STILL_COMING]
    bob.send("/history 100")
    carol.send("/history 100")
    assert carol.take() == [BUSY]
    carol.send("/history 5")  # from memory
    assert carol.take()[0] == "-- History of #lobby, last 5 lines:"
    yield wait_until(lambda: history_answers(alice) and history_answers(bob))
    assert not factory.chat._reading_history
    carol.send("/history 100")
    yield wait_until(lambda: "-- History of #lobby, last 100 lines:" in carol.take())
    # The name, a refused /history 100 (its second line given back), /history 5
    # and /history 100: carol's bucket holds 20 - 1 - 1 - 1 - 2 = 15 lines.
    assert carol.protocol._flood.bucket.tokens == pytest.approx(15)


@pytest_twisted.inlineCallbacks
def test_a_long_history_shows_exactly_what_was_said_before_it(chat_over_store):
    """
    A /history beyond the lines kept in memory is read on the store's
    reader thread, yet shows the lines said just before it (not yet
    committed when it was asked) and none said after.
    """
    factory, clock, connect = chat_over_store(Limits(login_timeout=0, flood_rate=0),
                                              batch_interval=0.3)
    threads = []
    real = queries.history_upto

    def spy(*args):
        threads.append(threading.current_thread().name)
        return real(*args)

    queries.history_upto, restore = spy, real
    try:
        alice = connect("alice")
        bob = connect("bob")
        yield wait(factory.chat.store.flush())
        alice.send(*[f"line {i}" for i in range(40)])
        bob.take()
        bob.send("/history 30")
        alice.send("said after the request")
        yield wait_until(lambda: "-- End of history of #lobby." in bob.lines())
    finally:
        queries.history_upto = restore
    lines = bob.take()
    start = lines.index("-- History of #lobby, last 30 lines:")
    shown = [line.split("] ", 1)[1] for line in lines[start + 1:start + 31]]
    assert shown == [f"<alice> line {i}" for i in range(10, 40)]
    assert lines[start + 31] == "-- End of history of #lobby."
    assert len(threads) == 1 and "chatservice-store-reader" in threads[0]


# -- over real TCP: a crowd asking for 500 lines while another room chats ---------


class Asker(Protocol):
    """
    A client that logs in and counts what its /history requests get.  It
    counts in the bytes, without splitting them into lines: thousands of
    lines a second arrive, and this process must not be what slows the
    pings down.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.logged_in = defer.Deferred()
        self.answers = 0
        self.refusals = []
        self.received = 0
        self._tail = b""

    def connectionMade(self) -> None:
        """Give the name at once."""
        self.transport.write(self.name.encode() + b"\n")

    def dataReceived(self, data: bytes) -> None:
        """Count answers and keep refusals, in the complete lines received."""
        self.received += len(data)
        data = self._tail + data
        end = data.rfind(b"\n") + 1
        lines, self._tail = b"\n" + data[:end], data[end:]
        self.answers += lines.count(b"\n-- End of history")
        if b"\n!! " in lines:
            self.refusals.extend(line.decode("utf-8", "replace")
                                 for line in REFUSAL_LINE.findall(lines))
        if not self.logged_in.called and b"\n-> You joined" in lines:
            self.logged_in.callback(self)

    def ask(self) -> None:
        """Ask for the most history there is."""
        if self.transport.connected:
            self.transport.write(b"/history 500\n")


#: A refusal line in what an L{Asker} receives.
REFUSAL_LINE = re.compile(rb"(?m)^!! [^\r\n]*")


#: What a refused /history may say (the flood-control refusal has its wait).
READABLE_REFUSAL = re.compile(
    r"^!! (The server is busy; try /history again in a moment\."
    r"|Your previous /history is still on its way; wait for it, then try /history again\."
    r"|Slow down: /history 500 counts as 10 lines against flood control\. Try again in "
    r"\d+ seconds?, or ask for fewer lines\."
    r"|Slow down: you are sending more than 5 lines a second\. Lines sent too fast are "
    r"dropped\.)$")
#: Users asking for history, how often each asks, how long they ask before
#: and while the pings are measured, and the round trip that a ping of
#: someone else must stay under, in seconds.
ASKERS = 100
ASK_INTERVAL = 0.2
WARM_UP = 2.0
ABUSE_SECONDS = 6.0
PING_BOUND = 1.0


@pytest_twisted.inlineCallbacks
def test_a_crowd_asking_for_history_does_not_hold_up_another_room(tmp_path):
    """
    100 users in #lobby (which has 600 lines of history) send /history 500
    at the rate flood control allows for lines (5 a second each) while a
    user in #quiet chats and pings: every ping's round trip, and every line
    to the other member of #quiet, stays under a second; the refusals are
    readable lines; and the crowd gets history.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    data = ["--data-dir", str(tmp_path / "state")]
    # Fill #lobby's history with flood control off, then restart with the defaults.
    seeder = start_twistd(tmp_path, *data, "--flood-rate", "0")
    try:
        with seeder.connect() as seed:
            log_in(seed, "seed")
            seed.say(*[f"history line {i} " + "x" * 100 for i in range(600)])
            seed.sync("seeded")
        seeder.process.send_signal(signal.SIGTERM)
        seeder.process.wait(EXIT_TIMEOUT)
    finally:
        seeder.stop()
    server = start_twistd(tmp_path, *data, "--max-per-address", "0",
                          "--max-connections", "0")
    clients = []
    try:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port, timeout=TIMEOUT)
        pinger, listener = LineClient(), LineClient()
        for client, name in ((pinger, "pinger"), (listener, "listener")):
            yield connectProtocol(endpoint, client)
            clients.append(client)
            client.say(name, "/join quiet", "/leave lobby")
            yield client.expect("<- You left #lobby")
        askers = [Asker(f"asker{i}") for i in range(ASKERS)]
        for asker in askers:
            yield connectProtocol(endpoint, asker)
            clients.append(asker)
        yield wait(defer.gatherResults([a.logged_in for a in askers]), 30)

        # Each asker sends /history 500 five times a second, the rate flood
        # control allows for lines, spread over the interval.
        loops = []
        for i, asker in enumerate(askers):
            loop = task.LoopingCall(asker.ask)
            loops.append(loop)
            reactor.callLater(i * ASK_INTERVAL / ASKERS, loop.start, ASK_INTERVAL)
        rounds = []
        delays = []
        started = time.monotonic()
        n = 0
        try:
            # The first seconds warm up a PyPy server's JIT; they are not measured.
            yield task.deferLater(reactor, WARM_UP, lambda: None)
            started = time.monotonic()
            while time.monotonic() - started < ABUSE_SECONDS:
                n += 1
                sent = time.monotonic()
                pinger.say(f"quiet line {n}")
                yield pinger.sync(f"p{n}", timeout=30)
                rounds.append(time.monotonic() - sent)
                yield listener.expect(f"<pinger> quiet line {n}", timeout=30)
                delays.append(time.monotonic() - sent)
                # Two lines every half second: within the pinger's own flood control.
                yield task.deferLater(reactor, max(0.0, sent + 0.5 - time.monotonic()),
                                      lambda: None)
        finally:
            for loop in loops:
                if loop.running:
                    loop.stop()
        yield task.deferLater(reactor, 1.5, lambda: None)  # the last answers arrive
    finally:
        for client in clients:
            client.transport.abortConnection()
        server.stop()
    answers = sum(a.answers for a in askers)
    refusals = [line for a in askers for line in a.refusals]
    print(f"\nping round trip: max {max(rounds) * 1000:.0f} ms, "
          f"median {sorted(rounds)[len(rounds) // 2] * 1000:.0f} ms over {len(rounds)}; "
          f"chat line max {max(delays) * 1000:.0f} ms; /history answers {answers}, "
          f"rounds {[round(r * 1000) for r in rounds]}, "
          f"refusals {len(refusals)}, MiB received {sum(a.received for a in askers) / 2**20:.1f}")
    assert max(rounds) < PING_BOUND, [round(r, 3) for r in rounds]
    assert max(delays) < PING_BOUND, delays
    assert answers >= ASKERS, (answers, refusals[:5])
    assert all(READABLE_REFUSAL.match(line) for line in refusals), sorted(set(refusals))
    assert "Traceback" not in server.log()
