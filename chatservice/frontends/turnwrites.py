"""
Writing to clients' sockets once per reactor turn, without asking the
reactor to watch them.

Twisted's C{transport.write} queues the bytes, asks the reactor to watch
the socket for writability (an C{epoll_ctl} system call), and sends them
on a later turn, which then stops watching (a second C{epoll_ctl}).  For
a line to a room of 10,000 members that is three system calls and much
Python per member, where one C{send()} would do: the benchmark's line to
10,000 members cost 98 to 115 ms of server CPU through
C{transport.write}, and 36 to 41 ms with one C{send()} per member.

L{TurnWrites} gathers what is written to each connection during a
reactor turn (the lines of a reply, the room lines of every read the turn
handled) and, at the start of the next turn, before the reactor polls,
gives each connection one C{send()} of all of it.  A connection that
already has bytes queued in its transport (a client that is not keeping
up) is written with C{transport.write}, and so is whatever the kernel did
not take, so the order of the bytes and Twisted's own handling of full
buffers, producers and errors stay as they were.
"""

from typing import Callable, Dict, List, Union

from twisted.internet import tcp
from twisted.internet.interfaces import IReactorTime

Writer = Callable[[bytes], None]


class TurnWrites:
    """
    Gathers the writes of one reactor turn per connection and sends them
    at the start of the next.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        # A connection's writes of this turn: one bytes object (the usual
        # case: no container for the garbage collector to track, which for
        # a line to 10,000 members made a fifth of the cost), or a list.
        self._pending: Dict[tcp.Connection, Union[bytes, List[bytes]]] = {}
        self._scheduled = False

    def writer(self, transport) -> Writer:
        """
        Return a writer for C{transport}: L{tcp.Connection} transports (TCP
        and UNIX sockets) get a gathering one; any other (TLS, a test's
        StringTransport) gets C{transport.write} itself.
        """
        if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
            return transport.write
        queue = transport.write

        def write(data: bytes) -> None:
            pending = self._pending
            chunks = pending.get(transport)
            if chunks is not None:
                if type(chunks) is list:
                    chunks.append(data)
                else:
                    pending[transport] = [chunks, data]  # type: ignore[list-item]
            elif transport._tempDataLen or transport.dataBuffer:
                queue(data)  # behind what is queued already
            else:
                pending[transport] = data
                if not self._scheduled:
                    self._scheduled = True
                    self._clock.callLater(0, self.flush)

        return write

    def flush(self) -> None:
        """Send what every connection was written this turn."""
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for transport, chunks in pending.items():
            _send(transport, chunks)

    def flush_now(self, transport) -> None:
        """
        Send what C{transport} was written this turn now (before its
        writes start going another way, so that they stay in order).
        """
        chunks = self._pending.pop(transport, None)
        if chunks:
            _send(transport, chunks)


#: The most buffers one sendmsg() takes (Linux's IOV_MAX); more are joined first.
MAX_BUFFERS = 1024


def _send(transport: tcp.Connection, chunks: Union[bytes, List[bytes]]) -> None:
    # Several writes leave in one sendmsg(), gathered by the kernel: joining
    # them first cost a copy per member (a tenth of a fan-out under PyPy).
    if transport._tempDataLen or transport.dataBuffer:
        transport.write(_joined(chunks))
        return
    try:
        if isinstance(chunks, list) and len(chunks) <= MAX_BUFFERS:
            sent = transport.socket.sendmsg(chunks)
        else:
            chunks = _joined(chunks)
            sent = transport.socket.send(chunks)
    except BlockingIOError:
        sent = 0
    except (OSError, AttributeError):
        # Closed or half-closed (a closed transport may have dropped its
        # socket): Twisted's write drops the bytes or meets the error on
        # its own path, as it would have.
        transport.write(_joined(chunks))
        return
    if isinstance(chunks, list):
        if sent < sum(map(len, chunks)):
            transport.write(b"".join(chunks)[sent:])
    elif sent < len(chunks):
        transport.write(chunks[sent:])


def _joined(chunks: Union[bytes, List[bytes]]) -> bytes:
    return b"".join(chunks) if isinstance(chunks, list) else chunks
