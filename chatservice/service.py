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
    shutting down, closes their connections, and aborts the ones still open
    after the grace period, so C{twistd} never waits forever.
    """

    def __init__(self, factory) -> None:
        self.factory = factory

    def stopService(self) -> defer.Deferred:
        """Notify and disconnect everyone; fire when all are gone."""
        Service.stopService(self)
        return self.factory.shutdown(
            SHUTDOWN_MESSAGE, self.factory.limits.shutdown_grace
        )
