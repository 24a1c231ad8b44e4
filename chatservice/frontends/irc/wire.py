"""
IRC on the wire: lines in (tags, prefix, command, parameters) and lines out,
the numerics Twisted does not name, and how a chat name becomes a
C{nick!user@host} prefix.

Parsing reuses L{twisted.words.protocols.irc.parsemsg} for everything after
the IRCv3 message tags, which it does not know.
"""

import calendar
import time
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence

from twisted.words.protocols import irc

#: Longest line without its tags, CRLF included (RFC 1459).
MAX_LINE_BYTES = 512
#: Longest tag section a client may send, its C{@} and trailing space
#: included (IRCv3 message-tags: 4094 bytes of client tags; the server may
#: add its own up to a total of 8191, but a client's longer section is 417).
MAX_TAG_BYTES = 4096
#: Parameters IRC allows in one message (RFC 1459).
MAX_PARAMS = 15

# Numerics twisted.words.protocols.irc does not define.
RPL_TOPICWHOTIME = "333"
RPL_WHOISACCOUNT = "330"
ERR_INPUTTOOLONG = "417"
ERR_NICKTOOFAST = "438"
ERR_INVALIDCAPCMD = "410"
ERR_UNKNOWNERROR = "400"
RPL_LOCALUSERS = "265"
RPL_GLOBALUSERS = "266"

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class Message(NamedTuple):
    """One line from a client: its tags, command (upper case) and parameters."""

    tags: Dict[str, str]
    command: str
    params: List[str]


class BadMessage(ValueError):
    """A line that is not an IRC message at all."""


def unescape_tag_value(value: str) -> str:
    """A tag value with the IRCv3 escapes (C{\\:}, C{\\s}, ...) undone."""
    if "\\" not in value:
        return value
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(_TAG_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def parse_tags(raw: str) -> Dict[str, str]:
    """C{a=1;+b;c=x\\sy} as a dict (values unescaped; a bare key maps to C{""})."""
    tags = {}
    for item in raw.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = unescape_tag_value(value)
    return tags


def parse(line: str) -> Message:
    """
    Split one line (without its CRLF) into a L{Message}; raise
    L{BadMessage} for a line with no command.  A client's prefix, if any,
    is ignored, as servers do.
    """
    tags: Dict[str, str] = {}
    if line.startswith("@"):
        raw, _, line = line[1:].partition(" ")
        tags = parse_tags(raw)
    line = line.lstrip(" ")
    if not line or line.startswith(":") and " " not in line.strip():
        raise BadMessage("no command")
    try:
        _, command, params = irc.parsemsg(line)
    except (ValueError, IndexError, irc.IRCBadMessage):
        raise BadMessage("no command") from None
    return Message(tags, command.upper(), params)


def millis(when: float) -> int:
    """C{when} (seconds) in whole milliseconds, as server-time shows it."""
    return int(round(when * 1000))


def format_time(when: float) -> str:
    """An IRCv3 server-time value: C{2026-12-01T22:55:47.123Z}."""
    seconds, ms = divmod(millis(when), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def parse_time(value: str) -> Optional[int]:
    """A server-time value (C{2026-12-01T22:55:47.123Z}) in milliseconds, or L{None}."""
    try:
        whole, _, fraction = value.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        digits = (fraction + "000")[:3]
        return seconds * 1000 + int(digits) if digits.isdigit() else None
    except (ValueError, OverflowError):
        return None


def message_id(when: float, sender: str) -> str:
    """
    The C{msgid} of a message C{sender} said at C{when}: the microsecond it
    was said (hex) and a checksum of the sender's name, so that the same
    message has the same id live and in every replay of the history.
    """
    return f"{int(round(when * 1e6)):x}-{zlib.crc32(sender.encode('utf-8')):08x}"


def msgid_micros(msgid: str) -> Optional[int]:
    """The microsecond a L{message_id} was said at, or L{None} if it is not one."""
    head, _, _ = msgid.partition("-")
    try:
        return int(head, 16)
    except ValueError:
        return None


def escape_tag_value(value: str) -> str:
    """A tag value with the IRCv3 escapes applied (C{;} as C{\\:}, space as C{\\s} ...)."""
    return (value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
            .replace("\r", "\\r").replace("\n", "\\n"))


_UNSAFE = ("\r", "\n", "\0")


def _safe(param: str, middle: bool) -> str:
    """
    C{param} made unable to break the line: no CR, LF or NUL; a middle
    parameter (one that may echo what a client sent, such as an unknown
    nick) also without spaces, tabs or other unprintable characters or a
    leading colon, and never empty.
    """
    for char in _UNSAFE:
        if char in param:
            param = param.replace(char, "")
    if middle and (not param or " " in param or param[0] == ":" or not param.isprintable()):
        param = "".join(c for c in param if c != " " and c.isprintable()).lstrip(":") or "*"
    return param


def message(source: Optional[str], command: str, *params: str,
            tags: Optional[Dict[str, str]] = None) -> bytes:
    """
    One line to send: C{[@tags ]:source COMMAND params... :last}.  The last
    parameter is always sent as a trailing one (so it may hold spaces or be
    empty); the others are made safe (see L{_safe}), as is the last.
    """
    parts = []
    if tags:
        parts.append("@" + ";".join(
            key if value == "" else f"{key}={value}" for key, value in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        parts.extend(_safe(param, True) for param in params[:-1])
        parts.append(":" + _safe(params[-1], False))
    return (" ".join(parts) + "\r\n").encode("utf-8")


def split_text(text: str, budget: int) -> List[str]:
    """
    C{text} cut into pieces of at most C{budget} bytes of UTF-8 each, at a
    space where there is one in the second half of a piece, else between
    characters.
    """
    pieces: List[str] = []
    budget = max(budget, 16)
    while len(text.encode("utf-8")) > budget:
        cut = len(text.encode("utf-8")[:budget].decode("utf-8", "ignore"))
        space = text.rfind(" ", cut // 2, cut)
        if space > 0:
            cut = space
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    pieces.append(text)
    return pieces


def text_lines(source: str, command: str, target: str, text: str,
               tags: Optional[Dict[str, str]] = None, wrap: str = "%s") -> bytes:
    """
    A PRIVMSG or NOTICE of C{text} (shown as C{wrap % piece}, for CTCP
    ACTION) in as many lines as keep each within 512 bytes without its
    tags: a telnet user may send longer lines than IRC carries.
    """
    line = message(source, command, target, wrap % text, tags=tags)
    overhead = len(line) - len(text.encode("utf-8"))
    if not tags and len(line) <= MAX_LINE_BYTES:
        return line
    tag_bytes = len(line.split(b" ", 1)[0]) + 1 if tags else 0
    if len(line) - tag_bytes <= MAX_LINE_BYTES:
        return line
    pieces = split_text(text, MAX_LINE_BYTES - (overhead - tag_bytes))
    return b"".join(message(source, command, target, wrap % piece, tags=tags)
                    for piece in pieces)


def is_utf8(data: bytes) -> bool:
    """Whether C{data} is valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: Longest user name (the USER command's first parameter) kept for masks.
USERLEN = 16
#: Characters a user name may not hold: they would make a mask ambiguous.
_NOT_IN_USERNAME = frozenset(" !@*?,:")


def clean_username(raw: str) -> str:
    """
    The USER name C{raw} as masks show it: printable, without spaces or
    the mask characters C{!@*?,:}, at most L{USERLEN} characters (C{""}
    if nothing is left: masks then use the nick).
    """
    kept = "".join(c for c in raw if c.isprintable() and c not in _NOT_IN_USERNAME)
    return kept[:USERLEN]


def ident(username: str, nick: str) -> str:
    """
    The user part of a C{nick!user@host}: C{~} (no ident was checked) and
    the user name an IRC client gave with USER, else (a telnet or web
    user, or one no longer online) the nick itself.
    """
    return "~" + (username or nick)


def mask(nick: str, host: str, username: str = "") -> str:
    """
    The C{nick!user@host} prefix of chat user C{nick} (see L{ident}); the
    host is the server's name, the same for every front end.
    """
    return f"{nick}!{ident(username, nick)}@{host}"


def split_params(words: Sequence[str], prefix: str, width: int = MAX_LINE_BYTES - 2) -> List[str]:
    """
    Join C{words} with spaces into as few chunks as keep C{prefix} plus a
    chunk within C{width} bytes (for 353 NAMES and similar lists).
    """
    chunks: List[str] = []
    current: List[str] = []
    size = len(prefix.encode("utf-8"))
    used = size
    for word in words:
        length = len(word.encode("utf-8")) + 1
        if current and used + length > width:
            chunks.append(" ".join(current))
            current, used = [], size
        current.append(word)
        used += length
    if current:
        chunks.append(" ".join(current))
    return chunks
