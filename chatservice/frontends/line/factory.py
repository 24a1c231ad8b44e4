"""
L{ChatFactory}: the line protocol's factory, holding the shared chat.
"""

from twisted.internet.protocol import ServerFactory

from ...core.chat import Chat
from .protocol import ChatProtocol
from ..eagerwrite import EagerWrites


class ChatFactory(ServerFactory):
    """
    Builds a L{ChatProtocol} for each telnet or netcat connection; every
    connection it builds shares its L{Chat} (the users, rooms and rules),
    with each other and with the other front ends.

    @ivar chat: the chat every connection joins.
    """

    protocol = ChatProtocol

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        #: Room lines leave at once (see L{EagerWrites}).
        self.eager_writes = EagerWrites(chat.clock)
