"""
What every part of an IRC connection can count on: its attributes, the
output helpers it is given, and the small look-ups every command uses.
The protocol (L{chatservice.frontends.irc.protocol.IRCProtocol}) provides
the rest.
"""

from typing import TYPE_CHECKING, Any, Callable, Optional

from ...core import errors
from ...core.text import name_key, sanitize

if TYPE_CHECKING:
    from ...core.room import Room


class ConnectionBase:
    """The base of the IRC command mixins."""

    chat: Any
    user: Any
    caps: Any
    factory: Any
    clock: Any
    closing: bool
    away: Optional[str]
    batches = 0
    nick: Optional[str]
    username: Optional[str]
    realname: str
    oper: Optional[str]
    drop_oper: Callable[[], None]
    password: Optional[str]
    reply: Callable[..., None]
    notice: Callable[[str], None]
    send_line: Callable[[bytes], None]
    try_register: Callable[[], None]
    _check_failed: Callable[[Any], None]
    close_with_error: Callable[[str], None]
    notify_away: Callable[[], None]
    hold_input: Callable[[], Any]
    release_input: Callable[..., None]

    @property
    def renderer(self):
        """The factory's renderer for this client's rendering capabilities."""
        return self.factory.renderer_for(self.caps.rendering())

    @property
    def server(self) -> str:
        """The server's name, the source of every numeric."""
        return self.factory.server_name

    @property
    def target(self) -> str:
        """The client's nick as numerics address it (C{*} before registration)."""
        if self.user is not None:
            return self.user.name
        return "*"

    def me(self) -> str:
        """This client's own C{nick!user@host}."""
        return self.renderer.source(self.user.name)

    def find_channel(self, name: str) -> "Optional[Room]":
        """The room of channel C{name} (with its C{#}), or L{None}."""
        if not name.startswith("#"):
            return None
        try:
            return self.chat.find_room(name)
        except errors.ChatError:
            return None

    @staticmethod
    def _key(nick: str) -> str:
        """The name key of a nick as typed."""
        return name_key(sanitize(nick))

