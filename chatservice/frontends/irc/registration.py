"""
The commands of registration: C{CAP}, C{PASS}, C{USER}, and C{NICK} before
registration (L{RegistrationCommands.ask_nick}).  The protocol's
C{try_register} logs the client in once everything is in.
"""

from twisted.words.protocols import irc

from ...core import errors
from ...core.text import name_key, sanitize
from .base import ConnectionBase
from .wire import ERR_INVALIDCAPCMD, clean_username, message


class RegistrationCommands(ConnectionBase):
    """CAP, PASS, USER and the first NICK (mixed into the protocol)."""

    def irc_CAP(self, msg) -> None:
        """CAP LS [302] / LIST / REQ :caps / END."""
        sub = msg.params[0].upper()
        registered = self.user is not None
        if sub == "LS":
            if not registered:
                self.caps.negotiating = True
            offered = self.caps.ls(msg.params[1] if len(msg.params) > 1 else None)
            self.send_line(message(self.server, "CAP", self.target, "LS", offered))
        elif sub == "LIST":
            self.send_line(message(self.server, "CAP", self.target, "LIST",
                                   self.caps.listed()))
        elif sub == "REQ":
            if not registered:
                self.caps.negotiating = True
            asked = msg.params[1] if len(msg.params) > 1 else ""
            acked, names = self.caps.request(asked, registered)
            self.send_line(message(self.server, "CAP", self.target,
                                   "ACK" if acked else "NAK", " ".join(names)))
        elif sub == "END":
            if not registered and self.caps.negotiating:
                self.caps.negotiating = False
                self.try_register()
        else:
            self.reply(ERR_INVALIDCAPCMD, msg.params[0], "Invalid CAP command")

    def irc_PASS(self, msg) -> None:
        """
        PASS password, sent before NICK and USER: the server's password
        with C{--irc-password}, else the password of a registered nick.
        """
        if self.user is not None:
            self.reply(irc.ERR_ALREADYREGISTRED, "You may not reregister")
            return
        self.password = msg.params[0]

    def irc_USER(self, msg) -> None:
        """USER username 0 * :realname."""
        if self.user is not None:
            self.reply(irc.ERR_ALREADYREGISTRED, "You may not reregister")
            return
        if not msg.params[0] or not msg.params[3]:
            self.reply(irc.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters: the user "
                       "name and the real name may not be empty")
            return
        self.username = clean_username(msg.params[0])
        self.realname = sanitize(msg.params[3])
        self.try_register()

    def ask_nick(self, raw: str) -> None:
        """
        NICK before registration: refuse at once a nick that breaks the
        chat's name rules (432) or that someone online uses (433), else
        remember it and try to register.
        """
        try:
            nick = self.chat.validate_name(raw)
        except errors.InvalidName as e:
            self.reply(irc.ERR_ERRONEUSNICKNAME, raw, str(e))
            return
        if name_key(nick) in self.chat.users:
            self.reply(irc.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        self.nick = nick
        self.try_register()
