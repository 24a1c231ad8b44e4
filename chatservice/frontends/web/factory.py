"""
L{WebChatFactory}: the autobahn factory of the web front end's WebSockets,
holding the shared chat and the WebSocket limits.
"""

from typing import Iterable

from autobahn.twisted.websocket import WebSocketServerFactory

from ...core.chat import Chat
from .deflate import accept_offer
from .protocol import WebSocketChat
from ..turnwrites import TurnWrites

#: The largest WebSocket message (and frame) a client may send, in bytes
#: (C{--web-max-frame}); a larger one closes the connection (code 1009).
MAX_FRAME = 65536
#: Members listed in a C{room} message; a larger room gives its C{count}.
MAX_MEMBERS_LISTED = 500
#: Seconds a client has to finish the WebSocket opening handshake, and the
#: closing one before the connection is dropped.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds between the server's WebSocket pings, and how long a pinged
#: client has to answer (a half-open connection is noticed).
WEB_PING_INTERVAL = 60.0
WEB_PING_TIMEOUT = 30.0


class WebChatFactory(WebSocketServerFactory):
    """
    Builds a L{WebSocketChat} for each WebSocket at C{/ws}; every one shares
    the L{Chat} with the other front ends.

    @ivar chat: the chat every connection joins.
    @ivar allowed_origins: page origins (C{https://chat.example}) allowed
        besides the server's own page.
    """

    protocol = WebSocketChat

    def __init__(self, chat: Chat, allowed_origins: Iterable[str] = (),
                 max_frame: int = MAX_FRAME,
                 max_members_listed: int = MAX_MEMBERS_LISTED) -> None:
        super().__init__(reactor=chat.clock)
        self.chat = chat
        #: One send() per connection per reactor turn (see L{TurnWrites}).
        self.turn_writes = TurnWrites(chat.clock)
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.max_members_listed = max_members_listed
        self.setProtocolOptions(
            maxFramePayloadSize=max_frame, maxMessagePayloadSize=max_frame,
            openHandshakeTimeout=HANDSHAKE_TIMEOUT, closeHandshakeTimeout=HANDSHAKE_TIMEOUT,
            autoPingInterval=WEB_PING_INTERVAL, autoPingTimeout=WEB_PING_TIMEOUT,
            # the server checks Origin itself (its own page's, and --web-allow-origin)
            allowNullOrigin=False,
            # a refused message is answered with a close frame saying why
            # (1009: too big, 1007: not UTF-8) before the connection closes
            failByDrop=False,
            # browsers offer permessage-deflate: a room's frames are
            # compressed once for all its members (see deflate.py)
            perMessageCompressionAccept=lambda offers: accept_offer(offers, max_frame),
        )
