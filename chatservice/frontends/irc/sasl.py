"""
SASL PLAIN over IRC (IRCv3 C{sasl} 3.1/3.2): C{AUTHENTICATE PLAIN}, the
base64 payload in chunks of 400 bytes, and the numerics 900 and 903-908.
The password is checked exactly as C{PASS}'s is, through the accounts'
check queue (L{chatservice.persistence.accounts.Accounts.authenticate}).
"""

import base64
import binascii
from typing import Any, Callable, List, Optional

from ...core import errors
from ...core.text import name_key
from .base import ConnectionBase
from .wire import mask

# Numerics of IRCv3 SASL (twisted.words names none of them).
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

#: The mechanisms offered (C{sasl=PLAIN} in C{CAP LS 302}).
MECHANISMS = ("PLAIN",)
#: Bytes of base64 in one AUTHENTICATE line; a line of exactly this many
#: says more follows (IRCv3 sasl-3.1).
CHUNK = 400
#: Most bytes of base64 one SASL exchange may send in all.
MAX_SASL_BYTES = 4096


class SaslCommands(ConnectionBase):
    """AUTHENTICATE (mixed into the protocol)."""

    sasl_account: Optional[str] = None
    _sasl_mechanism: Optional[str] = None
    _sasl_chunks: Optional[List[str]] = None
    sasl_checking = False
    address: Optional[str]
    peer: Any
    log: Any
    disconnect: Callable[[str], None]
    wrong_password: Callable[[str], bool]  # ChatSession's

    def irc_AUTHENTICATE(self, msg) -> None:
        """AUTHENTICATE mechanism, then AUTHENTICATE base64 (or C{+}; C{*} aborts)."""
        arg = msg.params[0]
        if "sasl" not in self.caps:
            self.reply(ERR_SASLFAIL, "SASL authentication failed: request the sasl "
                       "capability first (CAP REQ sasl)")
            return
        if self.user is not None or self.sasl_account is not None:
            self.reply(ERR_SASLALREADY, "You have already authenticated using SASL"
                       if self.sasl_account is not None or self.user.registered
                       else "You are already registered: SASL works before registration")
            return
        if self.sasl_checking:
            self.reply(ERR_SASLFAIL, "SASL authentication failed: your password is "
                       "still being checked")
            return
        if arg == "*":
            if self._sasl_mechanism is not None:
                self._sasl_reset()
                self.reply(ERR_SASLABORTED, "SASL authentication aborted")
            else:
                self.reply(ERR_SASLFAIL, "SASL authentication failed: nothing to abort")
            return
        if self._sasl_mechanism is None:
            mechanism = arg.upper()
            if mechanism not in MECHANISMS:
                self.reply(RPL_SASLMECHS, ",".join(MECHANISMS),
                           "are available SASL mechanisms")
                self.reply(ERR_SASLFAIL, f"SASL authentication failed: {mechanism} is not "
                           "offered; use PLAIN")
                return
            self._sasl_mechanism, self._sasl_chunks = mechanism, []
            self.send_line(b"AUTHENTICATE +\r\n")
            return
        self._sasl_data(arg)

    def _sasl_reset(self) -> None:
        self._sasl_mechanism = self._sasl_chunks = None

    def _sasl_data(self, chunk: str) -> None:
        chunks = self._sasl_chunks if self._sasl_chunks is not None else []
        if len(chunk) > CHUNK or sum(map(len, chunks)) + len(chunk) > MAX_SASL_BYTES:
            self._sasl_reset()
            self.reply(ERR_SASLTOOLONG, "SASL message too long")
            return
        if chunk != "+":
            chunks.append(chunk)
        if len(chunk) == CHUNK:
            return  # more follows
        self._sasl_reset()
        try:
            payload = base64.b64decode("".join(chunks), validate=True).decode("utf-8")
            authzid, authcid, password = payload.split("\0")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            self.reply(ERR_SASLFAIL, "SASL authentication failed: PLAIN wants "
                       "base64 of authzid NUL authcid NUL password")
            return
        if authzid and name_key(authzid) != name_key(authcid):
            self.reply(ERR_SASLFAIL, "SASL authentication failed: you may only log in "
                       "as yourself (authzid must be empty or your account)")
            return
        accounts = self.chat.accounts
        if accounts is None or not self.chat.is_registered(authcid):
            self._sasl_failed(authcid)
            return
        self.sasl_checking = True
        d = accounts.authenticate(name_key(authcid), password, self.address, self)
        d.addCallbacks(self._sasl_checked, self._sasl_refused, (authcid,))
        d.addErrback(self._sasl_error)

    def _sasl_error(self, failure) -> None:
        self.sasl_checking = False
        self._check_failed(failure)

    def _sasl_checked(self, registered_name: Optional[str], authcid: str) -> None:
        self.sasl_checking = False
        if self.closing:
            return
        if registered_name is None:
            self._sasl_failed(authcid)
            return
        self.sasl_account = registered_name
        nick = self.nick or registered_name
        self.reply(RPL_LOGGEDIN, mask(nick, self.server, self.username or ""), registered_name,
                   f"You are now logged in as {registered_name}")
        self.reply(RPL_SASLSUCCESS, "SASL authentication successful")
        self.try_register()

    def _sasl_failed(self, authcid: str) -> None:
        self.reply(ERR_SASLFAIL, "SASL authentication failed: wrong account name or "
                   "password")
        self.wrong_password(authcid)

    def _sasl_refused(self, failure, authcid: str) -> None:
        """Too many password checks wait: say so; the client may try again."""
        failure.trap(errors.TooManyChecks)
        self.sasl_checking = False
        if not self.closing:
            self.reply(ERR_SASLFAIL, f"SASL authentication failed: {failure.value}")
