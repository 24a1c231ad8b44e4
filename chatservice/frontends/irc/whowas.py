"""
C{WHOWAS}: who had a nick before (RFC 1459 4.5.3, RFC 2812 3.6.3), from
the chat's record of the names people quit or renamed from
(L{chatservice.core.whowas}).
"""

import time

from twisted.words.protocols import irc

from ...core.moderation import ban_key, mask_matches
from .base import ConnectionBase
from .channels import MAX_TARGETS
from .wire import ident


def signoff_time(when: float) -> str:
    """When a nick was given up, as RPL_WHOISSERVER's text shows it (UTC)."""
    return time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(when))


class WhowasCommands(ConnectionBase):
    """The WHOWAS command (mixed into the protocol)."""

    def irc_WHOWAS(self, msg) -> None:
        """
        WHOWAS nick[,nick...] [count [server]]: the latest first, C{count}
        of them (none, 0 or less: every one kept), with wildcards; 406 when
        none, and 369 at the end either way.
        """
        if not msg.params or not msg.params[0]:
            self.reply(irc.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        targets = msg.params[0]
        try:
            count = int(msg.params[1]) if len(msg.params) > 1 else 0
        except ValueError:
            count = 0
        keys = [ban_key(nick) for nick in targets.split(",")[:MAX_TARGETS] if nick]
        found = self.chat.departures.find(keys, mask_matches, count)
        if not found:
            self.reply(irc.ERR_WASNOSUCHNICK, targets, "There was no such nickname")
        for entry in found:
            self.reply(irc.RPL_WHOWASUSER, entry.name, ident(entry.username, entry.name),
                       self.renderer.host, "*", entry.realname or entry.name)
            self.reply(irc.RPL_WHOISSERVER, entry.name, self.server, signoff_time(entry.when))
        self.reply(irc.RPL_ENDOFWHOWAS, targets, "End of WHOWAS")
