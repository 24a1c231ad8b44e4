"""
The simulated users of the load generator: a client protocol that logs in
and counts benchmark messages in bulk, its factory, and the producer that
sends fan-out messages as fast as the server takes them.
"""

import time
from typing import Optional

from chatservice.bench.dialects import MARK, MARK_TAIL, ROOM, WebDialect, message_lines

#: Messages a fan-out sender writes per call before checking backpressure.
CHUNK = 64


def make_client_classes():
    """Return the classes (BenchClient, BenchClientFactory, FanoutSender)."""
    # Twisted is imported inside the worker only: the coordinator never
    # needs a reactor, and a spawned worker installs epoll first.
    from twisted.internet.interfaces import IPushProducer
    from twisted.internet.protocol import ClientFactory, Protocol
    from zope.interface import implementer

    class BenchClient(Protocol):
        """
        One simulated user: logs in, then counts benchmark messages in bulk
        (and, when it is a sampler, parses them for latency).
        """

        def __init__(self, worker, idx: int, name: str, sender: bool,
                     sampler: bool, room: str = ROOM) -> None:
            self.w = worker
            self.idx = idx
            self.name = name
            self.room = room
            self.prefix = worker.dialect.prefix(room)
            self.sender = sender
            self.sampler = sampler
            self.state = "new"
            self.wait: Optional[bytes] = None
            self.scan = b""
            self.tail = b""
            self.partial = b""
            self.got = 0
            self.connector = None
            self.producer = None
            self.decode = getattr(worker.dialect, "decode", None)
            self.partial_frame = b""

        def connectionMade(self) -> None:
            """Send the login (and the request that confirms it)."""
            self.transport.setTcpNoDelay(True)
            dialect = self.w.dialect
            handshake = getattr(dialect, "handshake", None)
            if handshake is not None:  # a WebSocket: the upgrade first
                self.state = "handshake"
                self.wait = dialect.handshake_done
                self.transport.write(handshake(self.w.host, self.w.port))
                return
            self.state = "login"
            self.wait = dialect.ready_token
            self.transport.write(dialect.login(self.name, self.room))

        def expect(self, token: bytes, state: str) -> None:
            """Wait for C{token} in the input, then tell the worker."""
            self.state = state
            self.scan = b""
            self.wait = token

        def dataReceived(self, data: bytes) -> None:
            """Count the markers in C{data}; sample, and watch for a token, if asked."""
            w = self.w
            w.nbytes += len(data)
            if self.decode is not None and self.state != "handshake":
                data = self.decode(self, data)
            n = data.count(MARK)
            if self.tail:
                n += (self.tail + data[:MARK_TAIL]).count(MARK)
            self.tail = data[-MARK_TAIL:]
            if n:
                now = time.monotonic()
                w.t_last = now
                self.got += n
                if self.sender:
                    w.got_s += n
                else:
                    w.got_r += n
                if self.sampler:
                    self._sample(data, now)
            if self.wait is not None:
                buf = self.scan + data
                if self.wait in buf:
                    self.wait = None
                    self.scan = b""
                    if self.state == "handshake":
                        if self.decode is not None:  # frames may follow in this read
                            self.partial_frame = buf.split(self.w.dialect.handshake_done, 1)[1]
                        self.state = "login"
                        self.wait = w.dialect.ready_token
                        self.transport.write(w.dialect.login(self.name, self.room))
                    else:
                        w.token_seen(self)
                else:
                    self.scan = buf[-len(self.wait):]
            if w.dialect is WebDialect and b"\x89" in data:
                self.transport.write(WebDialect.answer_ws_pings(data))
            if w.dialect.answers_pings and b"PING " in data:
                for line in data.split(b"\n"):
                    if line.startswith(b"PING "):
                        self.transport.write(b"PONG " + line[5:].rstrip(b"\r") + b"\r\n")

        def _sample(self, data: bytes, now: float) -> None:
            lines = (self.partial + data).split(getattr(self.w.dialect, "sample_split", b"\n"))
            self.partial = lines.pop()
            samples = self.w.samples
            for line in lines:
                i = line.find(MARK)
                if i >= 0:
                    j = line.find(b" ", i)
                    try:
                        samples.append(now - float(line[i + len(MARK):j]))
                    except ValueError:
                        pass

        def connectionLost(self, reason=None) -> None:
            """Tell the worker (a login that failed, or a drop by the server)."""
            old, self.state = self.state, "closed"
            if self.producer is not None:
                self.producer.stopProducing()
            self.w.client_lost(self, old)

    class BenchClientFactory(ClientFactory):
        """Connects one L{BenchClient}."""

        def __init__(self, client) -> None:
            self.client = client

        def buildProtocol(self, addr):
            """Return the client this factory was made for."""
            return self.client

        def clientConnectionFailed(self, connector, reason) -> None:
            """The connection attempt failed: count it."""
            self.client.state = "closed"
            self.client.w.client_failed(self.client, reason)

    @implementer(IPushProducer)
    class FanoutSender:
        """
        Sends C{count} messages as fast as the server takes them: write a
        chunk, and stop when the transport's buffer passes its high-water
        mark until Twisted says it has drained (no unbounded buffering).
        """

        def __init__(self, client, count: int, size: int) -> None:
            self.client = client
            self.left = count
            self.seq = 0
            self.size = size
            self.paused = False
            self.finished = False

        def start(self) -> None:
            """Register with the transport and start writing."""
            self.client.producer = self
            self.client.transport.registerProducer(self, True)
            self.resumeProducing()

        def resumeProducing(self) -> None:
            """Write chunks of messages until paused or done."""
            self.paused = False
            client = self.client
            w = client.w
            write = client.transport.write
            if w.t_first_send is None:
                w.t_first_send = time.monotonic()
            while not self.paused and self.left > 0 and not self.finished:
                k = min(CHUNK, self.left)
                write(message_lines(w.dialect, k, self.seq, self.size, client.prefix))
                self.seq += k
                self.left -= k
                w.sent += k
            if self.left <= 0:
                self._finish()

        def pauseProducing(self) -> None:
            """The transport buffer is full: stop writing for now."""
            self.paused = True

        def stopProducing(self) -> None:
            """Stop for good (the phase ended or the connection went away)."""
            self.paused = True
            self._finish()

        def _finish(self) -> None:
            if self.finished:
                return
            self.finished = True
            client = self.client
            client.producer = None
            if client.state != "closed":
                client.transport.unregisterProducer()
            client.w.sender_done()

    return BenchClient, BenchClientFactory, FanoutSender
