"""
IRC operators: C{OPER name password} against the C{--irc-opers} password
file (the format of C{--admin-passwd}: C{python -m chatservice.passwords
add FILE NAME}), which makes the connection an operator (user mode C{+o},
shown in WHOIS), and C{KILL nick :reason}, which only an operator may use.
"""

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.logger import Logger
from twisted.words.protocols import irc

from .base import ConnectionBase
from .wire import message

log = Logger()

#: 313 RPL_WHOISOPERATOR's text.
WHOIS_OPERATOR = "is an IRC operator"


class OperCommands(ConnectionBase):
    """OPER and KILL (mixed into the protocol)."""

    #: The operator name this connection gave with a successful OPER, or None.
    oper = None

    def irc_OPER(self, msg) -> None:
        """OPER name password: 381 and MODE +o, 464 for a wrong pair, 491 with no operators."""
        if len(msg.params) < 2:
            self.reply(irc.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
            return
        checker = self.factory.opers
        if checker is None:
            self.reply(irc.ERR_NOOPERHOST, "This server has no IRC operators")
            return
        name, password = msg.params[0], msg.params[1]
        label = self.hold_input()
        d = checker.requestAvatarId(UsernamePassword(
            name.encode("utf-8"), password.encode("utf-8")))

        def granted(_avatar) -> None:
            self.release_input(label, lambda: self._become_oper(name))

        def refused(failure) -> None:
            if not failure.check(UnauthorizedLogin):
                log.failure("checking OPER {name}", failure, name=name)
            log.info("OPER {name} refused for {nick}", name=name, nick=self.target)
            self.release_input(label, lambda: self.reply(
                irc.ERR_PASSWDMISMATCH, "Password incorrect"))

        d.addCallbacks(granted, refused)

    def _become_oper(self, name: str) -> None:
        if self.user is None:
            return
        self.oper = name
        log.info("{nick} is now IRC operator {name}", nick=self.user.name, name=name)
        self.reply(irc.RPL_YOUREOPER, "You are now an IRC operator")
        self.send_line(message(self.me(), "MODE", self.user.name, "+o"))

    def drop_oper(self) -> None:
        """MODE nick -o: no longer an operator."""
        if self.oper is not None:
            self.oper = None
            self.send_line(message(self.me(), "MODE", self.user.name, "-o"))

    def irc_KILL(self, msg) -> None:
        """KILL nick :reason: an operator disconnects someone (481 for anyone else)."""
        if self.oper is None:
            self.reply(irc.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return
        if not msg.params or not msg.params[0]:
            self.reply(irc.ERR_NEEDMOREPARAMS, "KILL", "Not enough parameters")
            return
        target = self.chat.users.get(self._key(msg.params[0]))
        if target is None:
            self.reply(irc.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
            return
        reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "no reason given"
        self.chat.kick(target.name, f"killed by {self.user.name} ({reason})")
