"""
permessage-deflate (RFC 7692) for the server's frames, compressed once for
all the members of a room.

Browsers offer the extension on every WebSocket; a room's JSON lines shrink
several times over, which is what a page on a phone's connection feels, and
what the kernel copies for each member.  The server always answers with
C{server_no_context_takeover}: each of its messages is then compressed on
its own, so the same frame is the same compressed bytes for every member,
and L{deflate_frame} compresses a room's batch once (its one-entry cache
keeps the last frame it was given, which a broadcast hands to each member
in turn).  Frames from the client are left to autobahn, which inflates
them under the same size limit as plain ones.
"""

import zlib
from typing import Any, List, Optional

from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

from .frames import frame_payload, server_frame

#: Payloads shorter than this go uncompressed (RFC 7692 allows it message by
#: message): deflate would save a few bytes at best on a ping's answer.
MIN_DEFLATE = 100
#: zlib's compression level: 6 (its default) gives JSON batches about a
#: sixth of their size; lower levels gain little time on kilobyte batches.
DEFLATE_LEVEL = 6
#: The LZ77 window, in bits, when the client does not ask for a smaller one.
MAX_WINDOW_BITS = 15
#: The window a client that offers C{client_max_window_bits} is asked to use.
CLIENT_WINDOW_BITS = 11
#: What ends every flushed deflate block, and which RFC 7692 leaves out.
_TAIL = b"\x00\x00\xff\xff"
#: FIN + RSV1 (compressed) + text.
_DEFLATED_TEXT = 0xC1

#: The last (frame, window bits) compressed, and its compressed frame.
_last: List[Any] = [None, 0, b""]


def accept_offer(offers: list, max_frame: int) -> Optional[PerMessageDeflateOfferAccept]:
    """
    autobahn's C{perMessageCompressionAccept}: take the client's first
    permessage-deflate offer, with the server compressing each message on
    its own, and inflated client messages held to C{max_frame} bytes.
    """
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            bits = offer.request_max_window_bits or None
            # A client that allows it compresses into a small window, so
            # that its inflater here stays small too (zlib's state and the
            # window: at most about 9 KiB instead of 39 once the window has
            # filled; a page sends short lines).  One byte past the limit,
            # so that a message over it is seen to be.
            client_bits = CLIENT_WINDOW_BITS if offer.accept_max_window_bits else 0
            return _Accept(offer, request_max_window_bits=client_bits,
                           no_context_takeover=True, window_bits=bits,
                           max_message_size=max_frame + 1 if max_frame else None)
    return None


class _Accept(PerMessageDeflateOfferAccept):
    """autobahn's acceptance, telling the client it may forget each message's window."""

    def get_extension_string(self) -> str:
        """The response's C{Sec-WebSocket-Extensions}, with C{server_no_context_takeover}."""
        answer = super().get_extension_string()
        if "server_no_context_takeover" not in answer:
            answer += "; server_no_context_takeover"
        return answer


def window_bits(pmce) -> int:
    """The server's window, in bits, that the handshake agreed on (autobahn's C{pmce})."""
    bits = getattr(pmce, "server_max_window_bits", 0) or MAX_WINDOW_BITS
    return max(9, min(MAX_WINDOW_BITS, bits))


def deflate_frame(frame: bytes, bits: int = MAX_WINDOW_BITS) -> bytes:
    """
    C{frame}, a final text frame as L{text_frame} builds it, as a compressed
    frame (or as it is, when it is short or not a text frame).
    """
    if frame is _last[0] and bits == _last[1]:
        return _last[2]
    if frame[0] != 0x81:
        return frame
    payload = frame_payload(frame)
    if len(payload) < MIN_DEFLATE:
        return frame
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if data.endswith(_TAIL):
        data = data[:-4]
    out = server_frame(_DEFLATED_TEXT, data)
    _last[:] = [frame, bits, out]
    return out


def inflate_payload(data: bytes, bits: int = MAX_WINDOW_BITS) -> bytes:
    """The payload of a compressed message (for tests and clients)."""
    return zlib.decompressobj(-bits).decompress(data + _TAIL)
