"""
TurnWrites: what a turn writes to a connection leaves in one send() at the
start of the next turn, queued behind what the transport already holds,
over real TCP connections whose peer reads slowly or not at all.
"""

import socket

import pytest_twisted
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.testing import StringTransport

from chatservice.frontends.turnwrites import TurnWrites


class Keep(protocol.Protocol):
    """A server protocol that hands its transport to the test."""

    def connectionMade(self) -> None:
        self.factory.made.callback(self.transport)


@defer.inlineCallbacks
def connected_pair():
    """(the server side's tcp transport, a client socket, the listening port)."""
    factory = protocol.ServerFactory()
    factory.protocol = Keep
    factory.made = defer.Deferred()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
    client.connect(("127.0.0.1", port.getHost().port))
    transport = yield factory.made
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return transport, client, port


def next_turn():
    """A Deferred that fires on a later reactor turn."""
    return task.deferLater(reactor, 0, lambda: None)


@defer.inlineCallbacks
def read_all(client: socket.socket, size: int):
    """Read C{size} bytes from C{client}, letting the reactor send between reads."""
    got = bytearray()
    client.setblocking(False)
    while len(got) < size:
        try:
            got += client.recv(1 << 16)
        except BlockingIOError:
            yield task.deferLater(reactor, 0.001, lambda: None)
    return bytes(got)


def queued(transport) -> int:
    """Bytes held in the transport's own buffers."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


@pytest_twisted.inlineCallbacks
def test_a_turns_writes_leave_together_at_the_start_of_the_next_turn():
    """Nothing is sent or queued in the transport during the turn; at the next turn the lines leave in one send, and the transport never had to queue anything."""
    transport, client, port = yield connected_pair()
    try:
        writes = TurnWrites(reactor)
        write = writes.writer(transport)
        assert write != transport.write
        for line in (b"first\r\n", b"second\r\n", b"third\r\n"):
            write(line)
        assert queued(transport) == 0
        client.setblocking(False)
        try:
            early = client.recv(100)
        except BlockingIOError:
            early = b""
        assert early == b""
        yield next_turn()
        assert queued(transport) == 0
        got = yield read_all(client, len(b"first\r\nsecond\r\nthird\r\n"))
        assert got == b"first\r\nsecond\r\nthird\r\n"
    finally:
        client.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_bytes_arrive_complete_and_in_order_to_a_slow_reader():
    """Written far faster than the peer reads (a 4 KiB window), every byte arrives once and in order, whether it left in a send of its turn or waited in the transport."""
    transport, client, port = yield connected_pair()
    try:
        write = TurnWrites(reactor).writer(transport)
        chunks = [(b"%06d" % i) * 100 + b"\r\n" for i in range(400)]  # ~240 KB
        for i, chunk in enumerate(chunks):
            write(chunk)
            if i % 3 == 0:
                yield next_turn()
        expected = b"".join(chunks)
        got = yield read_all(client, len(expected))
        assert got == expected
    finally:
        client.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_writes_wait_behind_what_the_transport_holds():
    """When the transport already holds bytes, a write is queued behind them, not sent ahead."""
    transport, client, port = yield connected_pair()
    try:
        write = TurnWrites(reactor).writer(transport)
        transport.write(b"held by the transport\r\n")
        write(b"written after\r\n")
        assert queued(transport) == len(b"held by the transport\r\nwritten after\r\n")
        got = yield read_all(client, len(b"held by the transport\r\nwritten after\r\n"))
        assert got == b"held by the transport\r\nwritten after\r\n"
    finally:
        client.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_flush_now_sends_a_connections_gathered_writes_first():
    """Before a connection's writes go another way, what was gathered for it goes out, so the order holds."""
    transport, client, port = yield connected_pair()
    try:
        writes = TurnWrites(reactor)
        write = writes.writer(transport)
        write(b"gathered\r\n")
        writes.flush_now(transport)
        transport.write(b"direct\r\n")
        got = yield read_all(client, len(b"gathered\r\ndirect\r\n"))
        assert got == b"gathered\r\ndirect\r\n"
    finally:
        client.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_write_after_the_peer_is_gone_does_not_raise():
    """Once the connection is lost, writing is as harmless as Twisted's own write."""
    transport, client, port = yield connected_pair()
    try:
        writes = TurnWrites(reactor)
        write = writes.writer(transport)
        transport.loseConnection()
        client.close()
        yield task.deferLater(reactor, 0.05, lambda: None)
        write(b"nobody is there\r\n")
        yield next_turn()
        assert not transport.connected
    finally:
        yield port.stopListening()


def test_other_transports_get_their_own_write():
    """A transport that is not a socket (a test's, TLS) keeps its write."""
    transport = StringTransport()
    assert TurnWrites(task.Clock()).writer(transport) == transport.write
