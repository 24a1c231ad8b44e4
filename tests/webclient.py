"""
A WebSocket client for the web front end's protocol tests, over a
L{StringTransport}: a real handshake and real (masked) frames, built and
parsed here, so that the tests run on a L{task.Clock} without sockets.
"""

import json
import os
import struct
import zlib
from typing import Any, List, Optional, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatservice.frontends.web.factory import WebChatFactory

#: Frame opcodes.
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, masked frame from a client."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def server_frames(data: bytes) -> Tuple[List[Tuple[int, bytes]], bytes]:
    """The complete (opcode, payload) frames at the start of C{data}, and the rest."""
    frames = []
    while len(data) >= 2:
        opcode, size = data[0] & 0x0F, data[1] & 0x7F
        offset = 2
        if size == 126:
            if len(data) < 4:
                break
            size, offset = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            if len(data) < 10:
                break
            size, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + size:
            break
        payload = data[offset:offset + size]
        if data[0] & 0x40:  # RSV1: permessage-deflate, each message on its own
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        frames.append((opcode, payload))
        data = data[offset + size:]
    return frames, data


class TCPLikeTransport(StringTransport):
    """
    A L{StringTransport} that, like a TCP transport, lets a producer be
    unregistered when none is (autobahn unregisters one whenever it drops a
    connection).
    """

    def unregisterProducer(self) -> None:
        """Forget the producer, if any."""
        self.producer = None
        self.streaming = None


class FakeWebClient:
    """One WebSocket to a L{WebChatFactory} through a L{StringTransport}."""

    _next_port = 50000

    def __init__(self, factory: WebChatFactory, origin: Optional[str] = "http://chat.test",
                 host: str = "127.0.0.1", extensions: Optional[str] = None) -> None:
        FakeWebClient._next_port += 1
        self.transport = TCPLikeTransport(
            peerAddress=IPv4Address("TCP", host, FakeWebClient._next_port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        headers = [b"GET /ws HTTP/1.1", b"Host: chat.test", b"Upgrade: websocket",
                   b"Connection: Upgrade", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                   b"Sec-WebSocket-Version: 13"]
        if origin is not None:
            headers.append(b"Origin: " + origin.encode())
        if extensions is not None:
            headers.append(b"Sec-WebSocket-Extensions: " + extensions.encode())
        self.protocol.dataReceived(b"\r\n".join(headers) + b"\r\n\r\n")
        raw = self.transport.value()
        head, _, self._rest = raw.partition(b"\r\n\r\n")
        self.status = head.split(b"\r\n", 1)[0].decode()
        self.handshake = head.decode()
        self.transport.clear()
        self.frames: List[Tuple[int, bytes]] = []
        self._read = 0

    @property
    def session(self):
        """The server's L{WebSession} of this connection."""
        return self.protocol.session

    def send(self, message: Any) -> None:
        """Send C{message} as JSON in one text frame."""
        self.send_raw(json.dumps(message).encode())

    def send_raw(self, payload: bytes, opcode: int = TEXT) -> None:
        """Send C{payload} in one frame."""
        self.protocol.dataReceived(client_frame(payload, opcode))

    def _collect(self) -> None:
        data = self._rest + self.transport.value()
        self.transport.clear()
        frames, self._rest = server_frames(data)
        self.frames.extend(frames)

    def messages(self) -> List[dict]:
        """Every JSON message received so far (lists unpacked)."""
        self._collect()
        out: List[dict] = []
        for opcode, payload in self.frames:
            if opcode == TEXT:
                decoded = json.loads(payload)
                out.extend(decoded if isinstance(decoded, list) else [decoded])
        return out

    def take(self, kind: Optional[str] = None) -> List[dict]:
        """The messages (of type C{kind}, if given) since the last L{take}."""
        new = self.messages()[self._read:]
        self._read += len(new)
        return [m for m in new if kind is None or m["type"] == kind]

    def text_frames(self) -> List[bytes]:
        """The payloads of the text frames received so far."""
        self._collect()
        return [payload for opcode, payload in self.frames if opcode == TEXT]

    @property
    def closing(self) -> bool:
        """Whether the server sent a close frame or dropped the connection."""
        self._collect()
        return (any(opcode == CLOSE for opcode, _ in self.frames)
                or self.transport.disconnecting)

    def close_code(self) -> Optional[int]:
        """The code of the server's close frame, if it sent one."""
        self._collect()
        for opcode, payload in self.frames:
            if opcode == CLOSE and len(payload) >= 2:
                return struct.unpack("!H", payload[:2])[0]
        return None

    def lose(self) -> None:
        """The connection drops."""
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure
        self.protocol.connectionLost(Failure(ConnectionDone()))
