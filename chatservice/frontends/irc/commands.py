"""
The IRC commands: each is an C{irc_<COMMAND>} method, taking the parsed
L{chatservice.frontends.irc.wire.Message}.  They parse parameters and word
replies as numerics; the rules are the core's.  L{IRCCommands} holds the
talking, people and server commands and gathers the channel commands
(L{chatservice.frontends.irc.channels}) and registration's
(L{chatservice.frontends.irc.registration}).

Nicks are chat names.
"""

import time
from typing import TYPE_CHECKING, List

from twisted.internet import defer
from twisted.words.protocols import irc

from ...core import errors, events
from ...core.moderation import ban_key, mask_matches
from ...core.text import sanitize
from .channels import MAX_TARGETS, ChannelCommands
from .registration import RegistrationCommands
from .history import ChatHistoryCommands
from .sasl import SaslCommands
from .tags import TagCommands, client_tags
from .oper import WHOIS_OPERATOR, OperCommands
from .whowas import WhowasCommands
from .render import CTCP
from .wire import (ident, ERR_NICKTOOFAST, RPL_GLOBALUSERS, RPL_LOCALUSERS, RPL_WHOISACCOUNT,
                   message)

if TYPE_CHECKING:
    from ...core.user import User

#: Most nicks one USERHOST may name (RFC 1459).
MAX_USERHOST = 5
#: Parameters each command needs at least (others: none).
MINIMUM_PARAMS = {
    "USER": 4, "PASS": 1, "CAP": 1, "PING": 1, "JOIN": 1, "PART": 1,
    "TOPIC": 1, "WHOIS": 1, "MODE": 1, "ISON": 1, "USERHOST": 1, "KICK": 2,
    "AUTHENTICATE": 1,
}


def _silent(*args: str) -> None:
    """No reply: what a NOTICE gets for an error."""


class IRCCommands(ChannelCommands, RegistrationCommands, SaslCommands, ChatHistoryCommands,
                  TagCommands, WhowasCommands, OperCommands):
    """Every IRC command (mixed into the protocol)."""

    def find_command(self, name: str):
        """The handler of command C{name}, or L{None}."""
        if not name.isalpha():
            return None
        return getattr(self, "irc_" + name, None)

    @staticmethod
    def minimum_params(name: str) -> int:
        """How many parameters command C{name} needs."""
        return MINIMUM_PARAMS.get(name, 0)

    # -- talking ------------------------------------------------------------------

    def irc_PRIVMSG(self, msg) -> None:
        """PRIVMSG target[,target...] :text (CTCP ACTION is /me)."""
        self.relay(msg, notice=False)

    def irc_NOTICE(self, msg) -> None:
        """
        NOTICE target[,target...] :text: IRC users see a NOTICE, telnet
        users a line; never an error reply (RFC 1459 4.4.2).
        """
        self.relay(msg, notice=True)

    def _error(self, notice: bool):
        """How to answer an error: L{reply}, or (for a NOTICE) not at all."""
        return _silent if notice else self.reply

    def relay(self, msg, notice: bool) -> None:
        """Send a PRIVMSG or NOTICE to each of its targets."""
        error = self._error(notice)
        if not msg.params or not msg.params[0]:
            error(irc.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
            return
        if len(msg.params) < 2 or not msg.params[1]:
            error(irc.ERR_NOTEXTTOSEND, "No text to send")
            return
        text, is_action = msg.params[1], False
        if text.startswith(CTCP):
            body = text.strip(CTCP)
            word, _, rest = body.partition(" ")
            if word.upper() != "ACTION":
                if not notice:
                    self.notice(f"CTCP {word.upper()} is not relayed by this server.")
                return
            text, is_action = rest, True
        tags = client_tags(msg.tags)
        for target in msg.params[0].split(",")[:MAX_TARGETS]:
            if target.startswith("#"):
                self.say_in(target, text, is_action, notice, tags)
            else:
                self.whisper_to(target, text, is_action, notice, tags)

    def say_in(self, name: str, text: str, is_action: bool, notice: bool = False,
               tags: tuple = ()) -> None:
        """Say C{text} in channel C{name}, echoing it back with echo-message."""
        error = self._error(notice)
        room = self.find_channel(name)
        if room is None:
            error(irc.ERR_NOSUCHNICK, name, "No such nick/channel")
            return
        if self.user not in room:
            error(irc.ERR_CANNOTSENDTOCHAN, room.display,
                  "Cannot send to channel (you are not in it: JOIN it first)")
            return
        now = self.clock.seconds()
        try:
            self.chat.say(self.user, text, action=is_action, room=room, when=now,
                          notice=notice and not is_action, tags=tags)
        except errors.InvalidText:
            error(irc.ERR_NOTEXTTOSEND, "No text to send")
            return
        except (errors.RoomBusy, errors.CannotSpeak) as e:
            error(irc.ERR_CANNOTSENDTOCHAN, room.display, str(e))
            return
        if "echo-message" in self.caps:
            clean = sanitize(text)
            event = (events.Acted(room.name, self.user.name, clean, now) if is_action
                     else events.Said(room.name, self.user.name, clean, now, notice, tags))
            self.send_line(self.renderer.encode(event, True))

    def whisper_to(self, name: str, text: str, is_action: bool, notice: bool = False,
                   tags: tuple = ()) -> None:
        """Send C{text} privately to C{name} (kept for later if they are registered and away)."""
        error = self._error(notice)
        now = self.clock.seconds()
        try:
            target = self.chat.whisper(self.user, name, text, action=is_action, when=now,
                                       notice=notice, tags=tags)
        except errors.NoSuchUser:
            error(irc.ERR_NOSUCHNICK, name, "No such nick/channel")
            return
        except errors.InvalidText:
            error(irc.ERR_NOTEXTTOSEND, "No text to send")
            return
        if isinstance(target, defer.Deferred):
            # Registered and offline: kept for their next login, once stored.
            def kept(_) -> None:
                if not self.closing and not notice:
                    self.notice(f"{name} is offline; they will get your message when "
                                "they next log in.")

            def not_kept(failure) -> None:
                failure.trap(errors.MailboxFull)
                if not self.closing and not notice:
                    self.notice(str(failure.value))

            target.addCallbacks(kept, not_kept).addErrback(self._check_failed)
            return
        away = getattr(target.client, "away", None)
        if away and not notice:
            self.reply(irc.RPL_AWAY, target.name, away)
        if "echo-message" in self.caps:
            event = events.Private(self.user.name, target.name, sanitize(text), is_action,
                                   now, notice, tags)
            self.send_line(self.renderer.personal(event, target.name))

    # -- people -------------------------------------------------------------------

    def irc_NICK(self, msg) -> None:
        """NICK newnick: before registration, the nick asked for; after, a rename."""
        if not msg.params or not msg.params[0]:
            self.reply(irc.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        if self.user is None:
            self.ask_nick(msg.params[0])
            return
        new = msg.params[0]
        if new == self.user.name:
            return
        old_source = self.me()
        try:
            self.chat.rename(self.user, new)
        except errors.InvalidName as e:
            self.reply(irc.ERR_ERRONEUSNICKNAME, new, str(e))
        except errors.NameTaken as e:
            self.reply(irc.ERR_NICKNAMEINUSE, new, str(e))
        except errors.TooManyRenames as e:
            self.reply(ERR_NICKTOOFAST, new, str(e))
        else:
            self.send_line(message(old_source, "NICK", self.user.name))

    def irc_AWAY(self, msg) -> None:
        """AWAY :message marks you away; AWAY alone marks you back."""
        text = sanitize(msg.params[0]) if msg.params else ""
        was = self.away
        if text:
            self.away = text
            self.reply(irc.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.away = None
            self.reply(irc.RPL_UNAWAY, "You are no longer marked as being away")
        if self.away != was:
            self.notify_away()

    def notify_away(self) -> None:
        """
        away-notify: tell the IRC clients with that capability who share a
        channel with this user that they went away (or came back).
        """
        line = (message(self.me(), "AWAY", self.away) if self.away
                else message(self.me(), "AWAY"))
        told = {id(self)}
        for room in self.user.rooms.values():
            for member in room.members.values():
                client = member.client
                if id(client) in told:
                    continue
                told.add(id(client))
                if getattr(client, "frontend", None) == "irc" and "away-notify" in client.caps:
                    client.send_line(line)

    def _flags(self, user: "User") -> str:
        return "G" if getattr(user.client, "away", None) else "H"

    @staticmethod
    def _ident(user: "User") -> str:
        return ident(getattr(user.client, "username", "") or "", user.name)

    def _realname(self, user: "User") -> str:
        return getattr(user.client, "realname", "") or user.name

    def irc_WHO(self, msg) -> None:
        """
        WHO #room, WHO nick or WHO with a C{*} mask (C{0} or none: C{*}):
        352 for each user, then 315 with the mask as given.
        """
        mask = msg.params[0] if msg.params else "*"
        found: List[tuple] = []
        if mask.startswith("#"):
            room = self.find_channel(mask)
            if room is not None:
                found = [(room, member) for member in room.members.values()]
        else:
            for user in self._who_matches("*" if mask == "0" else mask):
                rooms = list(user.rooms.values())
                found.append((rooms[0] if rooms else None, user))
        for room, user in found:
            flags = self._flags(user) + (self.status(room, user) if room is not None else "")
            self.reply(irc.RPL_WHOREPLY, room.display if room is not None else "*",
                       self._ident(user), self.renderer.host, self.server, user.name, flags,
                       f"0 {self._realname(user)}")
        self.reply(irc.RPL_ENDOFWHO, mask, "End of /WHO list")

    def _who_matches(self, mask: str) -> "List[User]":
        """
        The users a WHO C{mask} that is not a channel names: the one with
        that nick, or with a C{*} in it, the matching users among this one
        and those sharing a room with it (everyone is invisible, +i, so a
        wildcard shows no stranger; RFC 2812 3.6.1).
        """
        key = ban_key(mask)
        if "*" not in key:
            user = self.chat.users.get(key)
            return [user] if user is not None else []
        seen = {self.user.key: self.user}
        for room in self.user.rooms.values():
            for member in room.members.values():
                seen.setdefault(member.key, member)
        return [user for name, user in sorted(seen.items()) if mask_matches(key, name)]

    def irc_WHOIS(self, msg) -> None:
        """WHOIS [server] nick[,nick...]: who they are and where."""
        for nick in msg.params[-1].split(",")[:MAX_TARGETS]:
            user = self.chat.users.get(self._key(nick))
            if user is None:
                self.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
                self.reply(irc.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
                continue
            self.reply(irc.RPL_WHOISUSER, user.name, self._ident(user), self.renderer.host,
                       "*", self._realname(user))
            visible = self.chat.moderation.visible
            channels = [self.status(room, user) + room.display for room in user.rooms.values()
                        if visible(room, self.user)]
            if channels:
                self.reply(irc.RPL_WHOISCHANNELS, user.name, " ".join(channels))
            self.reply(irc.RPL_WHOISSERVER, user.name, self.server, "chatservice")
            if getattr(user.client, "oper", None) is not None:
                self.reply(irc.RPL_WHOISOPERATOR, user.name, WHOIS_OPERATOR)
            away = getattr(user.client, "away", None)
            if away:
                self.reply(irc.RPL_AWAY, user.name, away)
            if user.registered:
                self.reply(RPL_WHOISACCOUNT, user.name, user.name, "is logged in as")
            self.reply(irc.RPL_ENDOFWHOIS, user.name, "End of /WHOIS list")

    def irc_ISON(self, msg) -> None:
        """ISON nick [nick...]: which of them are online."""
        nicks = " ".join(msg.params).split()
        online = [self.chat.users[key].name for key in map(self._key, nicks)
                  if key in self.chat.users]
        self.reply(irc.RPL_ISON, " ".join(online))

    def irc_USERHOST(self, msg) -> None:
        """USERHOST nick [nick...] (5 at most): nick=+user@host for each online."""
        found = []
        for nick in " ".join(msg.params).split()[:MAX_USERHOST]:
            user = self.chat.users.get(self._key(nick))
            if user is not None:
                here = "-" if getattr(user.client, "away", None) else "+"
                found.append(f"{user.name}={here}{self._ident(user)}@{self.renderer.host}")
        self.reply(irc.RPL_USERHOST, " ".join(found))

    # -- the server ---------------------------------------------------------------

    def irc_MOTD(self, msg) -> None:
        """MOTD: the message of the day again."""
        self.send_motd()

    def irc_LUSERS(self, msg) -> None:
        """LUSERS: how many users and channels there are."""
        self.send_lusers()

    def send_lusers(self) -> None:
        """
        251, 254, 255, then Modern's 265 and 266 (without their optional
        numbers: the chat keeps no peak of users).  Everyone is invisible
        (user mode +i is always on), and this is the only server, so its
        local users are all the users.
        """
        users, rooms = len(self.chat.users), len(self.chat.rooms)
        self.reply(irc.RPL_LUSERCLIENT, f"There are 0 users and {users} invisible on 1 server")
        self.reply(irc.RPL_LUSERCHANNELS, str(rooms), "channels formed")
        self.reply(irc.RPL_LUSERME, f"I have {len(self.chat.clients)} clients and 0 servers")
        self.reply(RPL_LOCALUSERS, f"Current local users {users}")
        self.reply(RPL_GLOBALUSERS, f"Current global users {users}")

    def send_motd(self) -> None:
        """375, 372 per line and 376; or 422 when there is no message of the day."""
        lines = self.chat.motd.splitlines()
        if not lines:
            self.reply(irc.ERR_NOMOTD, "MOTD File is missing")
            return
        self.reply(irc.RPL_MOTDSTART, f"- {self.server} Message of the day - ")
        for line in lines:
            self.reply(irc.RPL_MOTD, f"- {sanitize(line)}")
        self.reply(irc.RPL_ENDOFMOTD, "End of /MOTD command.")

    def irc_PING(self, msg) -> None:
        """PING token: PONG token."""
        self.send_line(message(self.server, "PONG", self.server, msg.params[0]))

    def irc_PONG(self, msg) -> None:
        """PONG: the client is alive (noted when the line arrived)."""

    def irc_QUIT(self, msg) -> None:
        """QUIT [:message]: leave; your channels see the message."""
        reason = sanitize(msg.params[0]) if msg.params else ""
        if self.user is not None:
            self.chat.logout(self.user, reason)
        self.close_with_error(f"Quit: {reason}" if reason else "Quit")

    def show_offline(self, messages) -> None:
        """Private messages kept while this registered user was offline."""
        if not messages or self.closing:
            return
        count = len(messages)
        self.notice(f"{count} message{'s' if count != 1 else ''} while you were away:")
        for kept in messages:
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(kept.when))
            text = kept.text if "server-time" in self.caps else f"[sent {stamp}] {kept.text}"
            event = events.Private(kept.sender, self.user.name, text, kept.action, kept.when)
            self.send_line(self.renderer.personal(event, self.user.name))

