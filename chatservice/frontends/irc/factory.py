"""
L{IRCFactory}: the IRC front end's factory over the shared chat, with the
settings every IRC connection shares (keep-alive timing, RPL_ISUPPORT).
"""

import time
from typing import Dict, List, Optional, Tuple

from twisted.internet.protocol import ServerFactory

from ...core.chat import Chat
from ...core.text import name_key
from .caps import RENDERING_ORDER
from .history import CHATHISTORY_MAX
from .moderation import CHANMODES, MAX_MODES, PREFIX
from .protocol import IRCProtocol
from .render import IRCRenderer
from ..turnwrites import TurnWrites

#: Seconds of silence from a client before the server sends it a PING.
PING_INTERVAL = 90.0
#: Seconds a PINGed client has to say anything before it is disconnected.
PING_TIMEOUT = 60.0
#: RPL_ISUPPORT tokens in one 005 line.
ISUPPORT_PER_LINE = 12


class IRCFactory(ServerFactory):
    """
    Builds an L{IRCProtocol} for each IRC connection; every connection
    shares L{chat} with the line protocol's.

    @ivar chat: the chat every connection joins.
    @ivar ping_interval: see L{PING_INTERVAL} (0: never PING).
    @ivar ping_timeout: see L{PING_TIMEOUT}.
    @ivar history_notices: whether clients without C{batch} get the replay
        on JOIN as NOTICEs (C{--irc-history-notices}).
    @ivar opers: see C{--irc-opers}.
    @ivar server_password: see C{--irc-password}.
    """

    protocol = IRCProtocol

    def __init__(self, chat: Chat, ping_interval: float = PING_INTERVAL,
                 ping_timeout: float = PING_TIMEOUT, history_notices: bool = False,
                 opers=None, server_password: Optional[str] = None) -> None:
        self.chat = chat
        #: what PASS must give before registration (C{--irc-password}), or None
        self.server_password = server_password
        #: who may become an IRC operator with OPER: a twisted.cred checker
        #: of user names and passwords, or None (no operators)
        self.opers = opers
        self.history_notices = history_notices
        #: One send() per connection per reactor turn (see L{TurnWrites}).
        self.turn_writes = TurnWrites(chat.clock)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.server_name = chat.server_name
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(chat.started_at))
        # One renderer per set of rendering capabilities, shared by every
        # client that has it: a broadcast encodes each event once per renderer.
        self._renderers: Dict[Tuple[bool, ...], IRCRenderer] = {}

    def lookup(self, name: str) -> Tuple[Optional[str], str]:
        """The account (if logged in to one) and real name of the user called C{name}."""
        user = self.chat.users.get(name_key(name))
        if user is None:
            return None, name
        realname = getattr(user.client, "realname", "") or user.name
        return (user.name if user.registered else None), realname

    def username(self, name: str) -> str:
        """The USER name of the IRC user called C{name}, or C{""} (not IRC, or not online)."""
        user = self.chat.users.get(name_key(name))
        return "" if user is None else getattr(user.client, "username", "") or ""

    def renderer_for(self, rendering: Tuple[bool, ...] = (False,)) -> IRCRenderer:
        """
        The shared renderer for clients with these rendering capabilities
        (L{CapNegotiation.rendering}: server-time, message-tags,
        account-tag, extended-join; missing ones are off).
        """
        renderer = self._renderers.get(rendering)
        if renderer is None:
            flags = tuple(rendering) + (False,) * (len(RENDERING_ORDER) - len(rendering))
            server_time, message_tags, account_tag, extended_join = flags
            renderer = self._renderers[rendering] = IRCRenderer(
                self.server_name, server_time=server_time, message_tags=message_tags,
                account_tag=account_tag, extended_join=extended_join, lookup=self.lookup,
                usernames=self.username)
        return renderer

    def isupport(self) -> List[str]:
        """The RPL_ISUPPORT tokens: what this server's names and channels are."""
        limits = self.chat.limits
        return [
            f"NETWORK={self.server_name}",
            # name_key is NFKC + Unicode case folding: for the ASCII letters,
            # digits, '_' and '-' that names are made of, that is "ascii"
            # (names cannot hold the []\\~ that rfc1459 also folds).
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            f"CHANNELLEN={limits.max_room_name_length + 1}",
            f"NICKLEN={limits.max_name_length}",
            f"TOPICLEN={limits.max_topic_length}",
            f"PREFIX={PREFIX}",
            f"CHANMODES={CHANMODES}",
            f"MODES={MAX_MODES}",
            f"CHANLIMIT=#:{limits.max_rooms_per_user or ''}",
            "TARGMAX=PRIVMSG:10,NOTICE:10,JOIN:10,PART:10,WHOIS:10,WHOWAS:10,NAMES:10,LIST:10",
            "UTF8ONLY",
            f"CHATHISTORY={CHATHISTORY_MAX}",
            "MSGREFTYPES=timestamp,msgid",
        ]

    def isupport_chunks(self) -> List[Tuple[str, ...]]:
        """L{isupport} cut into the tokens of each 005 line."""
        tokens = self.isupport()
        return [tuple(tokens[i:i + ISUPPORT_PER_LINE])
                for i in range(0, len(tokens), ISUPPORT_PER_LINE)]
