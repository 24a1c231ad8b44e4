"""
Abuse handling over real TCP connections to a real listening service: a
client that stops reading, a flooder, the connection limits and the timeouts.
"""

import socket

import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.protocols.basic import LineReceiver

from chatservice.tap import Options, makeService

TIMEOUT = 10


class LineClient(LineReceiver):
    """A test client: records every line, lets a test wait for one."""

    delimiter = b"\r\n"
    MAX_LENGTH = 1 << 20

    def __init__(self) -> None:
        self.lines = []
        self.waiters = []
        self.closed = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line.decode("utf-8"))
        for waiter in list(self.waiters):
            predicate, d = waiter
            if predicate(self.lines[-1]):
                self.waiters.remove(waiter)
                d.callback(self.lines[-1])

    def connectionLost(self, reason=None) -> None:
        self.closed.callback(None)

    def wait_for(self, text: str) -> defer.Deferred:
        """Fire with the first line (already seen or to come) containing C{text}."""
        from twisted.internet import reactor

        for line in self.lines:
            if text in line:
                return defer.succeed(line)
        d = defer.Deferred()
        self.waiters.append((lambda line: text in line, d))
        return d.addTimeout(TIMEOUT, reactor)

    def say(self, *lines: str) -> None:
        """Send lines the way netcat does."""
        self.transport.write(b"".join(line.encode() + b"\n" for line in lines))


@pytest.fixture
def chat():
    """Start a chat service with given extra options; stop it afterwards."""
    from twisted.internet import reactor

    started = []

    @defer.inlineCallbacks
    def start(*args):
        options = Options()
        options.parseOptions(["--port", "tcp:0:interface=127.0.0.1", *args])
        service = makeService(options, reactor)
        service.startService()
        started.append(service)
        endpoint_service = list(service)[-1]
        port = yield endpoint_service._waitingForPort
        service.port = port.getHost().port
        return service

    yield start
    for service in started:
        pytest_twisted.blockon(defer.maybeDeferred(service.stopService))


@defer.inlineCallbacks
def connect(port: int, name: str = None):
    """Open a L{LineClient} to the service, logging in as C{name} if given."""
    from twisted.internet import reactor

    creator = protocol.ClientCreator(reactor, LineClient)
    client = yield creator.connectTCP("127.0.0.1", port, timeout=TIMEOUT)
    yield client.wait_for("What's your name?")
    if name is not None:
        client.say(name)
        yield client.wait_for(f"Hello {name}")
    return client


def wait_until(condition, timeout: float = TIMEOUT) -> defer.Deferred:
    """Poll C{condition} every 10 ms until true; fail after C{timeout}."""
    from twisted.internet import reactor, task

    @defer.inlineCallbacks
    def poll():
        for _ in range(int(timeout / 0.01)):
            if condition():
                return
            yield task.deferLater(reactor, 0.01, lambda: None)
        raise AssertionError("condition never became true")

    return poll()


@pytest_twisted.inlineCallbacks
def test_slow_reader_dropped_others_served(chat):
    """A client that never reads is dropped at the output cap; the room keeps talking."""
    service = yield chat("--flood-rate", "0")  # default cap: 1 MiB
    factory = service.factory
    slow = socket.create_connection(("127.0.0.1", service.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"slowpoke\n")
    try:
        yield wait_until(lambda: "slowpoke" in factory.users)
        talker = yield connect(service.port, "talker")
        observer = yield connect(service.port, "observer")
        slow_protocol = factory.users["slowpoke"].client
        worst = [0]

        def watch():
            from chatservice.protocol import pending_output

            worst[0] = max(worst[0], pending_output(slow_protocol.transport))
            return "slowpoke" not in factory.users

        payload = "x" * 1000
        count = 8000
        # The observer reads in this same process: pace the talker on it so
        # that only the client that never reads falls behind.
        for start in range(0, count, 200):
            talker.say(*[f"{n} {payload}" for n in range(start, start + 200)])
            yield observer.wait_for(f"<talker> {start + 199} ")
            watch()
        yield wait_until(watch)
        received = [l for l in observer.lines if l.startswith("<talker>")]
        assert len(received) == count
        assert "<- slowpoke quit (not reading: output buffer full)" in observer.lines
        # bounded: never more than the cap plus one read's worth of lines
        assert 0 < worst[0] <= 1024 * 1024 + 128 * 1024
        talker.transport.loseConnection()
        observer.transport.loseConnection()
        yield defer.gatherResults([talker.closed, observer.closed])
    finally:
        slow.close()


@pytest_twisted.inlineCallbacks
def test_flooder_throttled_then_dropped(chat):
    """A flood gets a warning, then a disconnect; the others keep chatting."""
    service = yield chat("--flood-burst", "5", "--flood-rate", "1", "--flood-kick", "20")
    flooder = yield connect(service.port, "flooder")
    alice = yield connect(service.port, "alice")
    bob = yield connect(service.port, "bob")
    flooder.say(*[f"spam {n}" for n in range(500)])
    yield flooder.wait_for("Slow down")
    yield flooder.wait_for("You were disconnected for flooding.")
    yield flooder.closed
    yield alice.wait_for("<- flooder quit (flooding)")
    spam = [l for l in alice.lines if l.startswith("<flooder>")]
    assert 1 <= len(spam) <= 5
    bob.say("still works?")
    yield alice.wait_for("<bob> still works?")
    for client in (alice, bob):
        client.transport.loseConnection()
        yield client.closed


@pytest_twisted.inlineCallbacks
def test_connection_limits(chat):
    """Over --max-connections and --max-per-address a newcomer is told why and closed."""
    service = yield chat("--max-connections", "3", "--max-per-address", "2")
    first = yield connect(service.port)
    second = yield connect(service.port)
    from twisted.internet import reactor

    third = yield protocol.ClientCreator(reactor, LineClient).connectTCP(
        "127.0.0.1", service.port, timeout=TIMEOUT)
    line = yield third.wait_for("Too many connections")
    assert line == "-- Too many connections from your address (2 at most). Close one and try again."
    yield third.closed
    assert len(service.factory.clients) == 2
    for client in (first, second):
        client.transport.loseConnection()
        yield client.closed


@pytest_twisted.inlineCallbacks
def test_server_full(chat):
    """Past --max-connections the next connection gets 'server is full'."""
    service = yield chat("--max-connections", "1", "--max-per-address", "0")
    first = yield connect(service.port)
    from twisted.internet import reactor

    second = yield protocol.ClientCreator(reactor, LineClient).connectTCP(
        "127.0.0.1", service.port, timeout=TIMEOUT)
    line = yield second.wait_for("full")
    assert line == "-- The server is full (1 connections). Please try again later."
    yield second.closed
    first.transport.loseConnection()
    yield first.closed


@pytest_twisted.inlineCallbacks
def test_login_and_idle_timeouts(chat):
    """A silent newcomer and an idle user are told and disconnected."""
    service = yield chat("--login-timeout", "0.3", "--idle-timeout", "0.6")
    newcomer = yield connect(service.port)
    idler = yield connect(service.port, "idler")
    yield newcomer.wait_for("You took too long to choose a name.")
    yield newcomer.closed
    yield idler.wait_for("You were idle for more than 0.6 seconds.")
    yield idler.closed
    assert service.factory.users == {}
