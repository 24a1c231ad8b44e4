"""
Writing to a client's socket at once, when nothing is waiting before it.

Twisted's C{transport.write} queues the bytes, asks the reactor to watch
the socket for writability (an C{epoll_ctl} system call), and sends them
on the reactor's next turn, which then stops watching (a second
C{epoll_ctl}).  For a line to a room of 10,000 members that is three
system calls and much Python per member, where one C{send()} would do:
the benchmark's line to 10,000 members cost 98 to 115 ms of server CPU
through C{transport.write} and 36 to 41 ms with L{EagerWrites}, nearly
all of it in C{send()} itself.

The first write to a connection in a reactor turn is sent at once when
the transport has nothing queued (the usual case: clients read what they
are sent); later writes in the same turn (the lines of a reply) are
queued with C{transport.write}, so that they still leave together at the
end of the turn, and so is whatever the kernel did not take.  The order of
the bytes and Twisted's own handling of full buffers, producers and errors
stay as they were.
"""

from typing import Callable, Set

from twisted.internet import tcp
from twisted.internet.interfaces import IReactorTime

Writer = Callable[[bytes], None]


class EagerWrites:
    """
    Makes eager writers for the connections of one reactor, and remembers
    which of them were written to in the current turn.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._written: Set[object] = set()
        self._clearing = False

    def _clear(self) -> None:
        self._written.clear()
        self._clearing = False

    def writer(self, transport) -> Writer:
        """
        Return a writer for C{transport}: L{tcp.Connection} transports (TCP
        and UNIX sockets) get an eager one; any other (TLS, a test's
        StringTransport) gets C{transport.write} itself.
        """
        if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
            return transport.write
        send = transport.socket.send
        queue = transport.write
        written = self._written

        def write(data: bytes) -> None:
            if transport in written or transport._tempDataLen or transport.dataBuffer:
                queue(data)
                return
            written.add(transport)
            if not self._clearing:
                self._clearing = True
                self._clock.callLater(0, self._clear)
            try:
                sent = send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                # Closed, or half-closed: Twisted's write drops the bytes or
                # meets the error on its own path, as it would have.
                queue(data)
                return
            if sent < len(data):
                queue(data[sent:])

        return write
