"""
Socket helpers for the tests that talk to a real listening chat server:

- L{LineClient}, a Twisted client protocol that records every line the server
  sends and lets a test wait (with a timeout) for one that matches;
- L{BlockingClient}, a plain blocking socket that types lines the way netcat
  does, for tests that run the server in a subprocess;
- L{wait_until} and L{wait}, waiting on the reactor with a timeout.

The reactor is imported inside functions only: pytest-twisted installs it.
"""

import re
import socket
import time
from typing import Callable, List, Optional, Set, Union

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver

#: Seconds a test waits for anything over a socket before it fails.
TIMEOUT = 5.0

#: What a test waits for: a substring of the line, a compiled regular
#: expression, or a predicate on the decoded line.
Match = Union[str, "re.Pattern", Callable[[str], bool]]


def matcher(match: Match) -> Callable[[str], bool]:
    """Return a predicate for C{match} (see L{Match})."""
    if isinstance(match, str):
        return lambda line: match in line
    if hasattr(match, "search"):
        return lambda line: match.search(line) is not None
    return match


def take_first(lines: List[str], taken: Set[int],
               predicate: Callable[[str], bool]) -> Optional[int]:
    """
    Return the index of the first line of C{lines} that matches
    C{predicate} and is not in C{taken}, adding it to C{taken}; or None.
    """
    for index, line in enumerate(lines):
        if index not in taken and predicate(line):
            taken.add(index)
            return index
    return None


class LineClient(LineReceiver):
    """
    A test client over real TCP.  It reads CRLF-terminated lines (what the
    server sends) and writes LF-terminated ones, like netcat.

    @ivar lines: every line received so far, decoded.
    @ivar raw: every byte received so far.
    @ivar closed: fires (with None) when the connection is lost.
    @ivar close_reason: then, the reason, a L{Failure}.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = 1 << 22

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.raw = bytearray()
        self.closed: defer.Deferred = defer.Deferred()
        self.is_closed = False
        self.close_reason = None
        self._taken = set()  # indexes of lines an expect() returned
        self._waiters: List[tuple] = []

    def dataReceived(self, data: bytes) -> None:
        """Keep the raw bytes too (telnet replies are not lines), then split."""
        self.raw += data
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        """Record C{line} and fire the waiters it matches."""
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(text):
                self._waiters.remove(waiter)
                self._taken.add(len(self.lines) - 1)
                d.callback(text)
                return  # one waiter per line

    def connectionLost(self, reason=None) -> None:
        """Fire L{closed}; pending waiters fail at once instead of timing out."""
        self.is_closed = True
        waiters, self._waiters = self._waiters, []
        for _, d in waiters:
            d.errback(AssertionError(
                f"connection closed while waiting; lines were {self.lines!r}"))
        self.close_reason = reason
        self.closed.callback(None)

    def expect(self, match: Match, timeout: float = TIMEOUT) -> defer.Deferred:
        """
        Fire with the first line that matches C{match} and that no earlier
        L{expect} returned, waiting up to C{timeout} seconds for it.  (So
        lines from several senders can be expected in any order, and the
        same text twice means two lines.)
        """
        from twisted.internet import reactor

        predicate = matcher(match)
        index = take_first(self.lines, self._taken, predicate)
        if index is not None:
            return defer.succeed(self.lines[index])
        if self.is_closed:
            return defer.fail(AssertionError(
                f"connection closed; no line matching {match!r} in {self.lines!r}"))
        d = defer.Deferred()
        entry = (predicate, d)
        self._waiters.append(entry)

        def explain(failure):
            if entry in self._waiters:
                self._waiters.remove(entry)
            if failure.check(defer.TimeoutError):
                raise AssertionError(
                    f"no line matching {match!r} within {timeout}s; "
                    f"lines were {self.lines!r}")
            return failure

        return d.addTimeout(timeout, reactor).addErrback(explain)

    def say(self, *lines: str) -> None:
        """Type each line, ending it with LF as netcat does."""
        self.transport.write(b"".join(line.encode("utf-8") + b"\n" for line in lines))

    def send_raw(self, data: bytes) -> None:
        """Write C{data} as is."""
        self.transport.write(data)

    @defer.inlineCallbacks
    def sync(self, token: str, timeout: float = TIMEOUT):
        """
        Round-trip a C{/ping}: once it answers, everything the server wrote
        to this client before reading the ping has arrived.
        """
        self.say(f"/ping {token}")
        # endswith: telnet replies written just before may prefix the line
        yield self.expect(lambda line: line.endswith(f"PONG {token}"), timeout)

    def wait_closed(self, timeout: float = TIMEOUT) -> defer.Deferred:
        """Fire when the connection is lost, or fail after C{timeout}."""
        from twisted.internet import reactor

        if self.is_closed:
            return defer.succeed(None)
        d = defer.Deferred()

        def fire(result):
            if not d.called:  # not timed out already
                d.callback(None)
            return result

        self.closed.addBoth(fire)

        def explain(failure):
            failure.trap(defer.TimeoutError)
            raise AssertionError(
                f"connection still open after {timeout}s; lines were {self.lines!r}")

        return d.addTimeout(timeout, reactor).addErrback(explain)


@defer.inlineCallbacks
def connect_client(port: int, name: Optional[str] = None,
                   timeout: float = TIMEOUT, expect_prompt: bool = True):
    """
    Connect a L{LineClient} to 127.0.0.1:C{port}, wait for the name prompt
    (unless C{expect_prompt} is false: a refused connection gets none), and
    log in as C{name} if given (waiting for the server's hello).
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=timeout)
    client = LineClient()
    yield connectProtocol(endpoint, client).addTimeout(timeout, reactor)
    if not expect_prompt:
        return client
    yield client.expect("What's your name?", timeout)
    if name is not None:
        client.say(name)
        yield client.expect(f"-- Hello {name},", timeout)
        yield client.expect("-> You joined", timeout)
    return client


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT,
               interval: float = 0.01) -> defer.Deferred:
    """Poll C{condition} until true, failing after C{timeout} seconds."""
    from twisted.internet import reactor, task

    @defer.inlineCallbacks
    def poll():
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition {condition!r} not true within {timeout}s")
            yield task.deferLater(reactor, interval, lambda: None)

    return poll()


def wait(d: defer.Deferred, timeout: float = TIMEOUT) -> defer.Deferred:
    """Give C{d} a timeout, so that a Deferred that never fires fails the test."""
    from twisted.internet import reactor

    return d.addTimeout(timeout, reactor)


class BlockingClient:
    """
    A blocking socket to the chat, used like netcat: LF-terminated lines
    out, CRLF-terminated lines in.  Every read has a timeout.
    """

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.lines: List[str] = []
        self._taken: Set[int] = set()
        self._buffer = b""
        self.eof = False

    def close(self) -> None:
        """Close the socket (safe to call twice)."""
        self.sock.close()

    def __enter__(self) -> "BlockingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def say(self, *lines: str) -> None:
        """Type each line, ending it with LF."""
        self.sock.sendall(b"".join(line.encode("utf-8") + b"\n" for line in lines))

    def _read(self, deadline: float) -> bool:
        """Read once (until C{deadline}); return false at end of stream."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\r\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in complete)
        return True

    def expect(self, match: Match, timeout: Optional[float] = None) -> str:
        """
        Return the first line that matches C{match} and that no earlier
        L{expect} returned, reading for up to C{timeout} seconds.
        """
        predicate = matcher(match)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            index = take_first(self.lines, self._taken, predicate)
            if index is not None:
                return self.lines[index]
            try:
                more = not self.eof and self._read(deadline)
            except (socket.timeout, OSError) as e:
                raise AssertionError(
                    f"no line matching {match!r} within {timeout}s ({e!r}); "
                    f"lines were {self.lines!r}") from None
            if not more:
                raise AssertionError(
                    f"connection closed; no line matching {match!r} in {self.lines!r}")

    def sync(self, token: str) -> None:
        """Round-trip a C{/ping} (see L{LineClient.sync})."""
        self.say(f"/ping {token}")
        self.expect(lambda line: line == f"PONG {token}")

    def expect_eof(self, timeout: Optional[float] = None) -> None:
        """Read until the server closes the connection (or fail after C{timeout})."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            while not self.eof and self._read(deadline):
                pass
        except (socket.timeout, OSError) as e:
            raise AssertionError(
                f"connection not closed within {timeout}s ({e!r}); "
                f"lines were {self.lines!r}") from None


class RunningChat:
    """
    A started chat service and the clients a test opened to it.

    @ivar service: the top service from L{makeService}.
    @ivar factory: its L{ChatFactory}.
    @ivar listening: the L{IListeningPort}.
    @ivar port: the TCP port number it listens on.
    """

    def __init__(self, service, listening) -> None:
        self.service = service
        self.factory = service.factory
        self.listening = listening
        self.port = listening.getHost().port
        self.clients = []

    @defer.inlineCallbacks
    def connect(self, name=None):
        """Open a client (logged in as C{name} if given) and track it."""
        client = yield connect_client(self.port, name)
        self.clients.append(client)
        return client

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop the service if the test did not, drop any client still open,
        and wait until the port no longer listens and the server has seen
        every connection close: the reactor is clean for the next test.
        """
        from twisted.internet import reactor

        try:
            if self.service.running:
                yield defer.maybeDeferred(self.service.stopService).addTimeout(
                    TIMEOUT, reactor)
        finally:
            for client in self.clients:
                if not client.is_closed:
                    client.transport.abortConnection()
            for client in self.clients:
                yield client.wait_closed()
            yield wait_until(lambda: not self.listening.connected)
            yield wait_until(lambda: not self.factory.chat.clients)
