"""
IRCv3 message-tags from clients: the client-only tags (C{+name}) relayed
with PRIVMSG and NOTICE, and C{TAGMSG}, a message of tags alone, which
only IRC clients with C{message-tags} receive (telnet users never see one).
"""

from typing import Dict, Tuple

from twisted.words.protocols import irc

from ...core import errors
from .base import ConnectionBase
from .render import IRCRenderer

#: Most client-only tags relayed from one message.
MAX_CLIENT_TAGS = 16


def client_tags(tags: Dict[str, str]) -> Tuple[Tuple[str, str], ...]:
    """The client-only tags (C{+name}) of a message, as relayed (at most L{MAX_CLIENT_TAGS})."""
    return tuple((key, value) for key, value in tags.items()
                 if key.startswith("+") and len(key) > 1)[:MAX_CLIENT_TAGS]


class TagCommands(ConnectionBase):
    """TAGMSG (mixed into the protocol)."""

    def irc_TAGMSG(self, msg) -> None:
        """TAGMSG target[,target...]: relay the client-only tags to message-tags clients."""
        if not msg.params or not msg.params[0]:
            self.reply(irc.ERR_NORECIPIENT, "No recipient given (TAGMSG)")
            return
        tags = client_tags(msg.tags)
        now = self.clock.seconds()
        for target in msg.params[0].split(",")[:10]:
            if target.startswith("#"):
                room = self.find_channel(target)
                if room is None:
                    self.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
                    continue
                if self.user not in room:
                    self.reply(irc.ERR_CANNOTSENDTOCHAN, room.display,
                               "Cannot send to channel (you are not in it: JOIN it first)")
                    continue
                try:
                    self.chat.moderation.check_speak(room, self.user)
                except errors.ChatError as e:
                    self.reply(irc.ERR_CANNOTSENDTOCHAN, room.display, str(e))
                    continue
                recipients = [member.client for member in room.members.values()
                              if member is not self.user]
                name = room.display
            else:
                user = self.chat.users.get(self._key(target))
                if user is None:
                    self.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
                    continue
                recipients = [user.client]
                name = user.name
            self._send_tagmsg(recipients, name, tags, now)

    def _send_tagmsg(self, recipients, target: str, tags, now: float) -> None:
        """
        One TAGMSG line per renderer, written to each IRC recipient with
        message-tags, and echoed to the sender with echo-message (to oneself:
        the delivery and the echo).
        """
        encoded: Dict[IRCRenderer, bytes] = {}
        echo = "echo-message" in self.caps
        for index, client in enumerate(recipients + ([self] if echo else [])):
            if getattr(client, "frontend", None) != "irc":
                continue
            renderer = client.renderer
            line = encoded.get(renderer)
            if line is None:
                line = encoded[renderer] = renderer.tagmsg(self.user.name, target, tags, now) or b""
            if not line:
                continue
            if index < len(recipients):  # a delivery: never part of a labeled reply
                client.settle()
                client.write(line)
            else:
                self.send_line(line)  # the echo
