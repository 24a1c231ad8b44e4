"""
The eager writer: bytes sent at once when nothing is queued, queued behind
what is, over a real TCP connection whose peer reads slowly or not at all.
"""

import socket

import pytest_twisted
from twisted.internet import defer, protocol, reactor, task
from twisted.test.proto_helpers import StringTransport

from chatservice.frontends.eagerwrite import EagerWrites


class Keep(protocol.Protocol):
    """A server protocol that hands its transport to the test."""

    def connectionMade(self) -> None:
        self.factory.made.callback(self.transport)


@defer.inlineCallbacks
def connected_pair():
    """(the server side's tcp transport, a blocking client socket, the listening port)."""
    factory = protocol.ServerFactory()
    factory.protocol = Keep
    factory.made = defer.Deferred()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    transport = yield factory.made
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return transport, client, port


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


@pytest_twisted.inlineCallbacks
def test_bytes_arrive_complete_and_in_order_when_the_kernel_buffer_fills():
    """Written far faster than the peer reads, every byte arrives once and in order: what the kernel does not take is queued in the transport, and later writes wait behind it."""
    transport, client, port = yield connected_pair()
    try:
        write = EagerWrites(reactor).writer(transport)
        assert write != transport.write
        chunks = [(b"%06d" % i) * 100 + b"\r\n" for i in range(400)]  # ~240 KB
        for chunk in chunks:
            write(chunk)
            yield task.deferLater(reactor, 0, lambda: None)  # a new turn: eager again
        assert transport._tempDataLen or transport.dataBuffer  # some had to be queued
        expected = b"".join(chunks)
        got = yield read_all(client, len(expected))
        assert got == expected
    finally:
        client.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_write_after_the_peer_is_gone_does_not_raise():
    """Once the connection is lost, writing is as harmless as Twisted's own write."""
    transport, client, port = yield connected_pair()
    try:
        write = EagerWrites(reactor).writer(transport)
        transport.loseConnection()
        client.close()
        yield task.deferLater(reactor, 0.05, lambda: None)
        write(b"nobody is there\r\n")
        assert not transport.connected
    finally:
        yield port.stopListening()


def test_other_transports_get_their_own_write():
    """A transport that is not a socket (a test's, TLS) keeps its write."""
    transport = StringTransport()
    assert EagerWrites(task.Clock()).writer(transport) == transport.write


@pytest_twisted.inlineCallbacks
def test_only_the_first_write_of_a_turn_is_sent_at_once():
    """The first write of a reactor turn goes out at once; the rest of the turn's (a reply's lines) are queued and leave together at the turn's end."""
    transport, client, port = yield connected_pair()
    try:
        write = EagerWrites(reactor).writer(transport)
        write(b"first\r\n")
        assert not transport._tempDataLen and not transport.dataBuffer
        write(b"second\r\n")
        write(b"third\r\n")
        assert transport._tempDataLen == len(b"second\r\nthird\r\n")
        got = yield read_all(client, len(b"first\r\nsecond\r\nthird\r\n"))
        assert got == b"first\r\nsecond\r\nthird\r\n"
        write(b"next turn\r\n")
        assert not transport._tempDataLen and not transport.dataBuffer
    finally:
        client.close()
        yield port.stopListening()
