"""
What the load generator says to a server: the dialects (chatservice's line
protocol, IRC, and chatservice's WebSocket) and the benchmark messages,
each carrying L{MARK}.
"""

import struct
import time
import zlib
from typing import Dict, Optional

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


def ws_frame(payload: bytes) -> bytes:
    """
    One client text frame holding C{payload}, masked with the key 0 (a
    valid key that leaves the payload as it is: the generator spends no
    time masking).
    """
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + b"\0\0\0\0" + payload


class WebDialect:
    """
    chatservice's WebSocket at C{/ws} (see WEBSOCKET.md): an HTTP upgrade,
    then one JSON message per frame; the server's frames are counted like
    lines (each said line's text carries L{MARK}).
    """

    name = "web"
    ready_token = b'"token":"R"}'
    #: Each message is its own frame (L{frame}): nothing before or after its text.
    say_prefix = b""
    eol = b""
    #: Where a sampler splits the server's output: each message ends its text before it.
    sample_split = b'"when"'
    answers_pings = False  # the WebSocket's own pings are answered by the client

    @staticmethod
    def handshake(host: str, port: int) -> bytes:
        """The HTTP request that opens the WebSocket (no Origin: a bot, not a page)."""
        return (b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n" % (host.encode("ascii"), port))

    #: The end of the server's handshake answer.
    handshake_done = b"\r\n\r\n"

    @staticmethod
    def login(name: str, room: str = ROOM) -> bytes:
        """Log in as C{name}, enter C{room} (unless it is the default room), then ask for a pong."""
        join = b"" if room == ROOM else ws_frame(
            b'{"type":"join","room":"%s"}' % room.encode("ascii"))
        return (ws_frame(b'{"type":"login","name":"%s"}' % name.encode("ascii")) + join
                + ws_frame(b'{"type":"ping","token":"R"}'))

    @staticmethod
    def prefix(room: str) -> bytes:
        """Nothing: an C{input} message goes to the current room (the one joined last)."""
        return b""

    @staticmethod
    def ping(token: str) -> bytes:
        """A ping message, answered in order."""
        return ws_frame(b'{"type":"ping","token":"%s"}' % token.encode("ascii"))

    @staticmethod
    def pong(token: str) -> bytes:
        """What the answer to L{ping} contains."""
        return b'"token":"%s"}' % token.encode("ascii")

    @staticmethod
    def frame(text: bytes) -> bytes:
        """One benchmark message (ASCII, nothing to escape) as an C{input} frame."""
        return ws_frame(b'{"type":"input","text":"' + text + b'"}')

    @staticmethod
    def answer_ws_pings(data: bytes) -> bytes:
        """
        The pong frames for the server's ping frames in C{data} (autobahn's
        pings carry 4 bytes; the JSON text of the benchmark has no byte 0x89).
        """
        out = []
        start = data.find(b"\x89\x04")
        while start >= 0 and start + 6 <= len(data):
            out.append(b"\x8a\x84\0\0\0\0" + data[start + 2:start + 6])
            start = data.find(b"\x89\x04", start + 6)
        return b"".join(out)


class WebDeflateDialect(WebDialect):
    """
    L{WebDialect} with permessage-deflate, as browsers speak it: the server
    compresses its messages (each on its own), and this client reads its
    frames and inflates them before counting (its own messages go
    uncompressed, which RFC 7692 allows).  A room's frame is the same bytes
    for every member, so each generator process inflates it once
    (L{_INFLATED}).
    """

    name = "webz"

    @staticmethod
    def handshake(host: str, port: int) -> bytes:
        """The upgrade, offering permessage-deflate."""
        return WebDialect.handshake(host, port).replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")

    @staticmethod
    def decode(client, data: bytes) -> bytes:
        """
        The text of the whole frames in C{client}'s input so far (inflated
        where compressed, one after another); a partial frame waits for the
        next read, and pings are answered.
        """
        if client.partial_frame:
            data = client.partial_frame + data
        out = []
        offset, end = 0, len(data)
        while end - offset >= 2:
            first, size = data[offset], data[offset + 1] & 0x7F
            head = offset + 2
            if size == 126:
                if end - head < 2:
                    break
                size = _UNPACK_SHORT(data, head)[0]
                head += 2
            elif size == 127:
                if end - head < 8:
                    break
                size = _UNPACK_LONG(data, head)[0]
                head += 8
            stop = head + size
            if stop > end:
                break
            payload = data[head:stop]
            opcode = first & 0x0F
            if opcode == 9:
                client.transport.write(b"\x8a" + bytes([0x80 | size]) + b"\0\0\0\0" + payload)
            elif opcode <= 2:
                if first & 0x40:
                    text = _INFLATED.get(payload)
                    if text is None:
                        if len(_INFLATED) > 4096:
                            _INFLATED.clear()
                        text = _INFLATED[payload] = zlib.decompressobj(-15).decompress(
                            payload + b"\0\0\xff\xff")
                    payload = text
                out.append(payload)
            offset = stop
        client.partial_frame = data[offset:]
        return b"".join(out)


#: Compressed payloads already inflated in this process, and their text.
_INFLATED: Dict[bytes, bytes] = {}
_UNPACK_SHORT = struct.Struct("!H").unpack_from
_UNPACK_LONG = struct.Struct("!Q").unpack_from


DIALECTS = {"chat": ChatDialect, "irc": IrcDialect, "web": WebDialect,
            "webz": WebDeflateDialect}


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
    frame = getattr(dialect, "frame", None)
    eol = dialect.eol
    if prefix is None:
        prefix = dialect.say_prefix
    out = []
    for seq in range(first_seq, first_seq + count):
        text = head + b"%d " % seq
        if len(text) < size:
            text += b"x" * (size - len(text))
        out.append(frame(text) if frame is not None else prefix + text + eol)
    return b"".join(out)
