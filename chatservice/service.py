"""
The service that owns the chat's lifetime: it starts what needs the store
once the server runs, and says goodbye to every connected user when the
server stops.
"""

from twisted.application.service import Service
from twisted.internet import defer

from .core.chat import Chat

#: What users see when the server stops.
SHUTDOWN_MESSAGE = "The server is shutting down. Goodbye!"


class ChatService(Service):
    """
    Wraps a L{Chat}: starting it starts the chat's own work; stopping it
    tells every user the server is shutting down, closes their
    connections, aborts the ones still open after the grace period (so
    C{twistd} never waits forever), and closes the database.
    """

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def startService(self) -> None:
        """Start the chat (it reads the default room's recent lines)."""
        Service.startService(self)
        self.chat.start()

    def stopService(self) -> defer.Deferred:
        """
        Notify and disconnect everyone, then close the database (committing
        everything said); fire when both are done.
        """
        Service.stopService(self)
        chat = self.chat
        done = chat.shutdown(SHUTDOWN_MESSAGE, chat.limits.shutdown_grace)
        store = chat.store
        if store is not None:
            done.addCallback(lambda _: store.close())
        return done
