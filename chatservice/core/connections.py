"""
The chat's connections, whatever their front end: admission at the door
(the connection limits), the counts of refusals and of the connections the
server closed, forgetting a closed connection, and the shutdown that closes
them all.  L{Connections} is a base of L{chatservice.core.chat.Chat}.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from . import counters, errors
from .connlog import ConnectionLog
from .limits import Limits

if TYPE_CHECKING:
    from .presence import BusyRoomNotices
    from .user import User


class Connections:
    """
    Every connected front end (L{IChatClient}), logged in or not, and the
    rules of the door.

    @ivar clients: every connection -> its remote address (or L{None}).
    @ivar connections_total: connections admitted so far.
    @ivar connections_refused: connections turned away so far.
    @ivar refused: refusals at the door by L{errors.Refused.reason}.
    @ivar disconnects: connections the server closed, by
        L{counters.DISCONNECTS} reason.
    @ivar shutting_down: true once L{shutdown} was called.
    """

    clock: IReactorTime
    limits: Limits

    if TYPE_CHECKING:  # what Chat, the class this is a base of, provides
        notices: "BusyRoomNotices"

        def logout(self, user: "User", reason: str = "") -> None: ...

    def start_connections(self) -> None:
        """Set up the (empty) registry of connections and its counters."""
        self.clients: Dict[Any, Optional[str]] = {}
        self._per_address: Dict[str, int] = {}
        self.connections_total = 0
        self.connections_refused = 0
        self.refused: Dict[str, int] = dict.fromkeys(counters.REFUSALS, 0)
        self.disconnects: Dict[str, int] = dict.fromkeys(counters.DISCONNECTS, 0)
        self.connection_log = ConnectionLog(self.clock)
        self.shutting_down = False
        self._drained: List[defer.Deferred] = []

    def admit(self, client, address: Optional[str]) -> None:
        """
        Record a new connection from C{address} (a host, or L{None} for
        local sockets), or raise L{errors.Refused} saying why not: the
        server is full, that address has too many connections, or the
        server is stopping.
        """
        limits = self.limits
        refusal: Optional[errors.Refused] = None
        if self.shutting_down:
            refusal = errors.ShuttingDown(
                "The server is shutting down. Please come back later.")
        elif limits.max_connections and len(self.clients) >= limits.max_connections:
            refusal = errors.ServerFull(
                f"The server is full ({limits.max_connections} connections). "
                "Please try again later.")
        elif (address is not None and limits.max_per_address
              and self._per_address.get(address, 0) >= limits.max_per_address):
            refusal = errors.TooManyFromAddress(
                f"Too many connections from your address "
                f"({limits.max_per_address} at most). Close one and try again.")
        if refusal is not None:
            self.connections_refused += 1
            self.refused[refusal.reason] = self.refused.get(refusal.reason, 0) + 1
            self.connection_log.refused(address, str(refusal))
            raise refusal
        self.clients[client] = address
        self.connections_total += 1
        if address is not None:
            self._per_address[address] = self._per_address.get(address, 0) + 1

    def count_disconnect(self, reason: str) -> None:
        """
        Count one connection the server is closing because of C{reason}
        (one of L{counters.DISCONNECTS}); front ends call it once per
        connection they close for a limit.
        """
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def client_disconnected(self, client, reason: str = "connection lost") -> None:
        """
        Forget a closed connection and, if it was logged in, its user, who
        leaves every room exactly as with C{/quit}.
        """
        user = client.user
        if user is not None:
            self.logout(user, reason)
        if client not in self.clients:
            return  # refused at the door
        address = self.clients.pop(client)
        if address is not None:
            left = self._per_address[address] - 1
            if left:
                self._per_address[address] = left
            else:
                del self._per_address[address]
        if not self.clients:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)

    def shutdown(self, message: str, grace: float) -> defer.Deferred:
        """
        Tell every connection C{message} and close it; connections still
        open after C{grace} seconds (clients that do not read) are aborted.
        Return a Deferred that fires once every connection is gone.
        """
        self.shutting_down = True
        self.connection_log.stop()
        self.notices.cancel()  # the busy rooms' batched notices
        done: defer.Deferred = defer.Deferred()
        if not self.clients:
            done.callback(None)
            return done
        self._drained.append(done)
        for client in list(self.clients):
            client.disconnect(message)

        def abort_stragglers() -> None:
            for client in list(self.clients):
                client.abort()

        timer = self.clock.callLater(grace, abort_stragglers)

        def stop_timer(result):
            if timer.active():
                timer.cancel()
            return result

        return done.addBoth(stop_timer)
