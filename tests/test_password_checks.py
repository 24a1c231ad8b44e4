"""
Password checks under attack: the L{CheckQueue} (bounds per connection,
per address and overall; addresses served in turn), what a login past the
bounds is told, and, over real TCP with real scrypt in threads, that a
name's owner logs in quickly while 200 connections from five other
addresses guess its password.
"""

import time

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.protocols.basic import LineReceiver

from chatservice.core import errors
from chatservice.persistence.accounts import TOO_MANY_CHECKS, CheckQueue
from chatservice.core.limits import Limits
from chatservice.persistence.store import ChatStore
from conftest import FakeClient, make_factory
from netclient import TIMEOUT, LineClient, wait_until

PASSWORD = "Zebra-Quartz-417"
PROMPT = "Password (or /back to choose another name):"


def refused(d):
    """The L{errors.TooManyChecks} that C{d} has already failed with."""
    failures = []
    d.addErrback(failures.append)
    assert failures, "not refused"
    failures[0].trap(errors.TooManyChecks)
    return str(failures[0].value)


def test_checks_run_a_few_at_once_and_addresses_take_turns():
    """
    Two run at once; the waiting ones start with the address served least
    recently: addresses that keep asking take turns, and one that was not
    asking goes before them (the owner, while others guess).
    """
    queue = CheckQueue(running=2, per_address=0, waiting=0)
    started, jobs = [], {}

    def job(name):
        def run():
            started.append(name)
            jobs[name] = defer.Deferred()
            return jobs[name]
        return run

    results = {}

    def submit(name, address):
        queue.submit(job(name), address).addCallback(
            lambda result, n=name: results.update({n: result}))

    for name, address in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"),
                          ("b1", "B"), ("b2", "B"), ("c1", "C")]:
        submit(name, address)
    assert started == ["a1", "a2"]
    assert queue.waiting == 5
    for name in ["a1", "a2", "b1"]:
        jobs[name].callback(f"done {name}")
    assert started == ["a1", "a2", "b1", "c1", "a3"]  # A was served before B and C
    submit("o1", "O")  # a newcomer goes before those that keep asking
    jobs["c1"].callback("done c1")
    assert started[-1] == "o1"
    for name in ["a3", "o1"]:
        jobs[name].callback(f"done {name}")
    assert started == ["a1", "a2", "b1", "c1", "a3", "o1", "b2", "a4"]
    for name in ["b2", "a4"]:
        jobs[name].callback(f"done {name}")
    assert results == {name: f"done {name}" for name in started}
    assert queue.most_running == 2 and queue.most_waiting == 5
    assert queue.waiting == 0 and not queue._served and not queue._per_address


def test_checks_are_bounded_per_connection_per_address_and_in_all():
    """
    One check at a time per connection, C{per_address} from one address
    (running or waiting), C{waiting} waiting in all: past a bound the
    request fails at once, and nothing is queued for it.
    """
    queue = CheckQueue(running=1, per_address=2, waiting=3)
    hold = defer.Deferred()
    queue.submit(lambda: hold, "A", owner="conn1")
    assert refused(queue.submit(lambda: hold, "A", owner="conn1")) == (
        "Your password is still being checked; wait for the answer.")
    queue.submit(lambda: hold, "A", owner="conn2")
    assert refused(queue.submit(lambda: hold, "A", owner="conn3")) == TOO_MANY_CHECKS
    queue.submit(lambda: hold, "B")
    queue.submit(lambda: hold, "C")
    assert queue.waiting == 3  # conn2's, B's and C's
    assert refused(queue.submit(lambda: hold, "D")) == TOO_MANY_CHECKS
    assert refused(queue.submit(lambda: hold, "E")) == TOO_MANY_CHECKS
    assert queue.waiting == 3 and queue.most_waiting == 3


@pytest.fixture
def held_checks(tmp_path):
    """
    A L{ChatFactory} over a real store whose password hashing waits until
    the test fires it: returns (factory, connect, pending), where pending
    lists the Deferreds of the checks in progress.
    """
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    store.open()
    pending = []

    def run_blocking(function, *args):
        d = defer.Deferred()
        pending.append((d, function, args))
        return d

    factory = make_factory(clock=reactor, store=store, run_blocking=run_blocking,
                          limits=Limits(login_timeout=0, max_password_checks=1,
                                        max_checks_per_address=1, max_checks_waiting=1))
    clients = []

    def connect(host="127.0.0.1"):
        client = FakeClient(factory, host=host)
        clients.append(client)
        return client

    yield factory, connect, pending
    for client in clients:
        client.lose()
    pytest_twisted.blockon(store.close().addTimeout(TIMEOUT, reactor))


@pytest_twisted.inlineCallbacks
def test_a_login_past_the_bounds_is_asked_again_without_counting_a_wrong_try(held_checks):
    """
    While the checks are full, a login is told to try again in a few
    seconds and is at the password prompt again; it is no wrong password,
    so refusals never disconnect; once there is room, the right password
    logs in.
    """
    factory, connect, pending = held_checks
    owner = connect()
    owner.send("owner", "/register " + PASSWORD)
    yield wait_until(lambda: pending)
    d, function, args = pending.pop()
    d.callback(function(*args))  # hash it for real
    yield wait_until(lambda: factory.chat.is_registered("owner"))
    owner.send("/quit")

    first, second = connect("127.0.0.2"), connect("127.0.0.3")
    first.send("owner", "guess one")
    yield wait_until(lambda: pending)  # first's check is running
    second.send("owner", "guess two")  # waiting: the one place there is
    third = connect("127.0.0.4")
    third.send("owner")
    for _ in range(5):
        third.take()
        third.send(PASSWORD)
        assert third.take() == [f"!! {TOO_MANY_CHECKS} {PROMPT}"]
        assert third.protocol.state == "password"
    again = connect("127.0.0.2")
    again.send("owner", PASSWORD)  # its address has a check already
    assert again.take()[-1] == f"!! {TOO_MANY_CHECKS} {PROMPT}"

    d, function, args = pending.pop()
    d.callback(function(*args))
    yield wait_until(lambda: pending)  # second's check starts
    d, function, args = pending.pop()
    d.callback(function(*args))
    yield wait_until(lambda: first.protocol.state == "password"
                     and second.protocol.state == "password")
    third.send(PASSWORD)
    yield wait_until(lambda: pending)
    d, function, args = pending.pop()
    d.callback(function(*args))
    yield wait_until(lambda: third.protocol.state == "chatting")
    assert not third.closed
    assert third.protocol._password_failures == 0


# -- over real TCP, with scrypt in threads ----------------------------------------

#: Guessing connections, from how many addresses, how long the attack runs
#: before the owner tries, how many times the owner logs in, and the bound on
#: each of the owner's logins, in seconds (93 ms on an idle server).
GUESSERS = 200
ADDRESSES = 5
HEAD_START = 1.0
OWNER_LOGINS = 3
LOGIN_BOUND = 2.0
REFUSAL = f"!! {TOO_MANY_CHECKS} {PROMPT}"


class Guesser(LineReceiver):
    """A connection that guesses the owner's password, again and again."""

    delimiter = b"\r\n"

    def __init__(self) -> None:
        self.guesses = 0
        self.refusals = []
        self.closed = defer.Deferred()

    def connectionMade(self) -> None:
        """Give the owner's name."""
        self.transport.write(b"owner\n")

    def lineReceived(self, line: bytes) -> None:
        """Guess at every prompt; after a refusal, a moment later."""
        from twisted.internet import reactor

        text = line.decode("utf-8", "replace")
        if not text.endswith(PROMPT):
            return
        if text.startswith("!!") and "Wrong password" not in text:
            self.refusals.append(text)
            reactor.callLater(0.2, self.guess)
        else:
            self.guess()

    def guess(self) -> None:
        """Send one wrong password."""
        if self.transport.connected:
            self.guesses += 1
            self.transport.write(f"wrong-guess-{self.guesses}\n".encode())

    def connectionLost(self, reason=None) -> None:
        """Let the attack open another connection."""
        self.closed.callback(None)


@pytest_twisted.inlineCallbacks
def test_the_owner_logs_in_quickly_while_200_connections_guess(chat):
    """
    200 connections from five addresses (127.0.0.2 to .6) guess a registered
    name's password, reconnecting after each third wrong guess, while its
    owner logs in from 127.0.0.1: each of the owner's logins takes less
    than 2 s, at most two checks run at once, the waiting ones stay within
    the bounds, and the guessers' refusals are readable.
    """
    from twisted.internet import reactor, task
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    server = yield chat("--max-per-address", "100")
    factory = server.factory
    owner = yield server.connect("owner")
    owner.say(f"/register {PASSWORD}")
    yield owner.expect("-- The name owner is now registered to you.", timeout=10)
    owner.say("/quit")
    yield owner.wait_closed()

    attacking = [True]
    guessers = []

    @defer.inlineCallbacks
    def attack(address):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port, timeout=TIMEOUT,
                                      bindAddress=(address, 0))
        while attacking[0]:
            guesser = Guesser()
            yield connectProtocol(endpoint, guesser)
            guessers.append(guesser)
            yield guesser.closed

    attacks = [attack(f"127.0.0.{2 + i % ADDRESSES}") for i in range(GUESSERS)]
    times = []
    try:
        yield task.deferLater(reactor, HEAD_START, lambda: None)
        for _ in range(OWNER_LOGINS):
            client = LineClient()
            yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port),
                                  client)
            server.clients.append(client)
            client.say("owner")
            yield client.expect(PROMPT)
            started = time.monotonic()
            client.say(PASSWORD)
            yield client.expect("-- Hello owner, welcome to chatservice!", timeout=30)
            times.append(time.monotonic() - started)
            client.say("/quit")
            yield client.wait_closed()
    finally:
        attacking[0] = False
        for guesser in guessers:
            guesser.transport.abortConnection()
        yield defer.DeferredList(attacks)
    refusals = [line for g in guessers for line in g.refusals]
    print(f"\nowner logins: {', '.join(f'{t * 1000:.0f} ms' for t in times)}; "
          f"guesses {sum(g.guesses for g in guessers)}, refusals {len(refusals)}")
    assert max(times) < LOGIN_BOUND, times
    checks = factory.chat.accounts.checks
    print(f"most waiting {checks.most_waiting}, most running {checks.most_running}")
    assert checks.most_running <= factory.chat.limits.max_password_checks
    assert checks.most_waiting <= ADDRESSES * factory.chat.limits.max_checks_per_address
    assert refusals and set(refusals) == {REFUSAL}
