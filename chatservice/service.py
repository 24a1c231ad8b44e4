"""
The service that owns the chat's lifetime: it says goodbye to every
connected user when the server stops.
"""

from twisted.application.service import Service
from twisted.internet import defer

#: What users see when the server stops.
SHUTDOWN_MESSAGE = "The server is shutting down. Goodbye!"


class ChatService(Service):
    """
    Wraps a L{ChatFactory}: stopping it tells every user the server is
    shutting down, closes their connections, aborts the ones still open
    after the grace period (so C{twistd} never waits forever), and closes
    the database.
    """

    def __init__(self, factory) -> None:
        self.factory = factory

    def stopService(self) -> defer.Deferred:
        """
        Notify and disconnect everyone, then close the database (committing
        everything said); fire when both are done.
        """
        Service.stopService(self)
        factory = self.factory
        done = factory.shutdown(SHUTDOWN_MESSAGE, factory.limits.shutdown_grace)
        if factory.store is not None:
            done.addCallback(lambda _: factory.store.close())
        return done
