"""
What the load generator says to a server: the two dialects (chatservice's
line protocol and IRC) and the benchmark messages, each carrying L{MARK}.
"""

import time
from typing import Optional

#: What every benchmark message carries, so receivers count copies with
#: C{bytes.count} (no name or host in either protocol contains braces).
MARK = b"{M}"
#: How many bytes of a read to keep, to find a marker split across reads.
MARK_TAIL = len(MARK) - 1

#: The room every client talks in (chatservice's default room).
ROOM = "lobby"


class ChatDialect:
    """chatservice's line protocol, as a client speaks it."""

    name = "chat"
    #: What follows the login once the server has placed the user in the
    #: default room: the answer to the C{/ping} sent right after the name.
    ready_token = b"PONG R\r"
    #: Before a message's text.
    say_prefix = b""
    eol = b"\n"
    answers_pings = False

    @staticmethod
    def login(name: str, room: str = ROOM) -> bytes:
        """
        The bytes that log in as C{name}, enter C{room} (when it is not the
        default room, which everyone is placed in) and then ask for a PONG.
        """
        join = b"" if room == ROOM else b"/join " + room.encode("ascii") + b"\n"
        return name.encode("ascii") + b"\n" + join + b"/ping R\n"

    @staticmethod
    def prefix(room: str) -> bytes:
        """Before a message's text said in C{room} (the user's current room)."""
        return b""

    @staticmethod
    def ping(token: str) -> bytes:
        """A request the server answers in order, after everything before it."""
        return b"/ping " + token.encode("ascii") + b"\n"

    @staticmethod
    def pong(token: str) -> bytes:
        """What the answer to L{ping} contains."""
        return b"PONG " + token.encode("ascii") + b"\r"


class IrcDialect:
    """IRC (RFC 1459/2812): PASS, NICK, USER, JOIN #lobby, PRIVMSG #lobby."""

    name = "irc"
    #: RPL_ENDOFNAMES: registered and joined.
    ready_token = b" 366 "
    say_prefix = b"PRIVMSG #" + ROOM.encode("ascii") + b" :"
    eol = b"\r\n"
    answers_pings = True

    @staticmethod
    def login(name: str, room: str = ROOM) -> bytes:
        """Register as C{name} (twisted.words wants a PASS) and join C{room}."""
        nick = name.encode("ascii")
        return (b"PASS bench\r\nNICK " + nick + b"\r\nUSER " + nick
                + b" 0 * :bench\r\nJOIN #" + room.encode("ascii") + b"\r\n")

    @staticmethod
    def prefix(room: str) -> bytes:
        """Before a message's text said in C{room}."""
        return b"PRIVMSG #" + room.encode("ascii") + b" :"

    @staticmethod
    def ping(token: str) -> bytes:
        """A PING, answered in order after everything sent before it."""
        return b"PING :" + token.encode("ascii") + b"\r\n"

    @staticmethod
    def pong(token: str) -> bytes:
        """twisted.words answers PING without echoing the token."""
        return b"PONG"


DIALECTS = {"chat": ChatDialect, "irc": IrcDialect}


def message_lines(dialect, count: int, first_seq: int, size: int,
                  prefix: Optional[bytes] = None) -> bytes:
    """
    Return C{count} benchmark messages as one write: each carries L{MARK},
    the monotonic send time (for latency) and a sequence number, padded to
    about C{size} bytes of text; C{prefix} says where (by default, the
    dialect's room).
    """
    stamp = b"%.6f" % time.monotonic()
    head = MARK + stamp + b" "
    eol = dialect.eol
    if prefix is None:
        prefix = dialect.say_prefix
    out = []
    for seq in range(first_seq, first_seq + count):
        text = head + b"%d " % seq
        if len(text) < size:
            text += b"x" * (size - len(text))
        out.append(prefix + text + eol)
    return b"".join(out)
