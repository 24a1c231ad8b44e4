"""
Shared fixtures: a chat factory on a fake clock, and clients connected to it
through L{StringTransport}, so protocol tests run without sockets or sleeps.

The reactor is not imported here: pytest-twisted installs it.
"""

from typing import List

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatservice.core.chat import Chat
from chatservice.core.limits import REPLAY_LINES, Limits
from chatservice.frontends.line.factory import ChatFactory
from chatservice.persistence import remember



def make_factory(clock, store=None, run_blocking=None, **options) -> ChatFactory:
    """
    A line-protocol factory over a new, started L{Chat} on C{clock} (with
    C{options} for the chat; with C{store}, its accounts and recent lines
    too, password checks run by C{run_blocking}).
    """
    accounts = recent = None
    if store is not None:
        accounts, recent = remember(store, clock, options.get("replay_lines", REPLAY_LINES),
                                    run_blocking, options.get("limits"))
    chat = Chat(clock=clock, store=store, accounts=accounts, recent=recent, **options)
    chat.start()
    return ChatFactory(chat)


class FakeClient:
    """
    One connection to a factory through a L{StringTransport}: type lines
    with L{send}, read what the server said with L{lines} / L{take}.
    """

    _next_port = 40000

    def __init__(self, factory: ChatFactory, host: str = "127.0.0.1") -> None:
        FakeClient._next_port += 1
        self.factory = factory
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", host, FakeClient._next_port)
        )
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        self._seen = 0

    def send(self, *lines: str, eol: bytes = b"\n") -> None:
        """Type each line, ending it with C{eol}."""
        for line in lines:
            self.protocol.dataReceived(line.encode("utf-8") + eol)

    def feed(self, data: bytes) -> None:
        """Deliver raw bytes as if read from the socket."""
        self.protocol.dataReceived(data)

    def output(self) -> bytes:
        """Everything the server wrote so far."""
        return self.transport.value()

    def lines(self) -> List[str]:
        """Every line the server wrote so far, decoded, without CRLF."""
        text = self.output().decode("utf-8")
        assert text == "" or text.endswith("\r\n"), text
        return text.split("\r\n")[:-1]

    def take(self) -> List[str]:
        """The lines written since the last call to L{take}."""
        lines = self.lines()
        new, self._seen = lines[self._seen:], len(lines)
        return new

    @property
    def user(self):
        return self.protocol.user

    @property
    def closed(self) -> bool:
        """Whether the server asked for the connection to be closed."""
        return self.transport.disconnecting or self.transport.disconnected

    def lose(self) -> None:
        """Simulate the client vanishing (no /quit)."""
        self.transport.loseConnection()
        self.protocol.connectionLost(None)


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


@pytest.fixture
def factory(clock) -> ChatFactory:
    """
    The line protocol's factory over a chat on the fake clock, with flood
    control off (tests/test_limits.py covers it with factories of its own).
    """
    return make_factory(clock=clock, server_name="testchat", motd="Be nice.",
                        limits=Limits(flood_rate=0))


@pytest.fixture
def connect(factory):
    """Return a function that opens a new fake connection."""

    def _connect(name: str = None, **kwargs) -> FakeClient:
        client = FakeClient(factory, **kwargs)
        if name is not None:
            client.send(name)
            assert client.protocol.state == "chatting", client.lines()
            client.take()
        return client

    return _connect


@pytest.fixture
def chat(tmp_path):
    """
    Return C{start(*options)}, which starts a chat service on a free port
    of 127.0.0.1 and fires with its L{RunningChat}; every service started
    is stopped and cleaned up after the test, pass or fail.
    """
    from twisted.application.internet import StreamServerEndpointService
    from twisted.internet import defer, reactor

    from chatservice.tap import Options, makeService
    from netclient import TIMEOUT, RunningChat

    started = []

    @defer.inlineCallbacks
    def start(*args):
        options = Options()
        options.parseOptions(["--port", "tcp:0:interface=127.0.0.1",
                              "--data-dir", str(tmp_path / "data"), *args])
        service = makeService(options, reactor)
        service.startService()
        [endpoint_service] = [s for s in service
                              if isinstance(s, StreamServerEndpointService)]
        # Not "yield endpoint_service._waitingForPort": that would replace
        # its result with None, and stopService would then never stop
        # listening.  Take a copy of the result instead.
        listening = defer.Deferred()

        def copy(port):
            listening.callback(port)
            return port

        endpoint_service._waitingForPort.addCallback(copy)
        try:
            port = yield listening.addTimeout(TIMEOUT, reactor)
        except BaseException:
            yield defer.maybeDeferred(service.stopService)
            raise
        running = RunningChat(service, port)
        started.append(running)
        return running

    yield start
    errors = []
    for running in started:
        try:
            pytest_twisted.blockon(running.stop())
        except Exception as e:  # clean up the others anyway
            errors.append(e)
    if errors:
        raise errors[0]
