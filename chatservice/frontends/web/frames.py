"""
WebSocket frames the web front end builds and reads itself, on its hot
paths only; autobahn does everything else.

Writing: a broadcast hands the same payload to every member, and a
server's frames are not masked, so L{text_frame} builds the frame once for
all of them (autobahn's C{sendMessage} would frame it again per member).

Reading: a page or bot sends one small text frame per message.  autobahn
reads each through some thirty Python calls (a masker object, a UTF-8
validator, a Deferred for C{onMessage}): about 17 µs a message here, three
times what the whole line protocol spends on a line.  L{split_text_frames}
takes the plain case, whole final masked text frames at the start of a
read, and leaves everything else (a partial frame, a fragment, a control
frame, an oversize or binary frame, text that is not UTF-8) to autobahn,
from the first such frame on, so that autobahn's state stays what it would
have been had it read them all.
"""

import struct
from typing import List, Tuple

#: The first byte of a final text frame with no extension bits (FIN, opcode 1).
_FINAL_TEXT = 0x81
_UNPACK_SHORT = struct.Struct("!H").unpack_from
_UNPACK_LONG = struct.Struct("!Q").unpack_from

#: The last payload framed, and its frame.
_last_framed: List[bytes] = [b"", b"\x81\x00"]


def server_frame(first: int, payload: bytes) -> bytes:
    """C{payload} in an unmasked frame whose first byte (FIN, RSV bits, opcode) is C{first}."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 126, size)
    else:
        head = struct.pack("!BBQ", first, 127, size)
    return head + payload


def text_frame(payload: bytes) -> bytes:
    """C{payload} as one final, unmasked WebSocket text frame (from the server)."""
    if payload is _last_framed[0]:
        return _last_framed[1]
    frame = server_frame(_FINAL_TEXT, payload)
    _last_framed[:] = [payload, frame]
    return frame


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame L{text_frame} built."""
    size = frame[1]
    return frame[2:] if size < 126 else frame[4:] if size == 126 else frame[10:]


def unmask(masked: bytes, key: bytes) -> bytes:
    """The payload of a client frame: C{masked} XOR the repeated 4-byte C{key}."""
    size = len(masked)
    if key == b"\0\0\0\0" or not size:
        return masked
    pad = key * ((size >> 2) + 1)
    return (int.from_bytes(masked, "little")
            ^ int.from_bytes(pad[:size], "little")).to_bytes(size, "little")


#: What L{_plain_header} says when it cannot tell yet, or the frame is not one to read here.
_MORE, _NOT_PLAIN = -1, -2


def _plain_header(data: bytes, offset: int, max_payload: int) -> Tuple[int, int]:
    """
    Where the mask key of the frame at C{offset} starts and its payload's
    size, if it is a final masked text frame of at most C{max_payload}
    bytes with its length in the shortest encoding (what autobahn
    accepts); C{(_MORE, 0)} if its header (mask key included) is not all
    there yet, C{(_NOT_PLAIN, 0)} if it is another kind of frame.
    """
    end = len(data)
    if end - offset < 2:
        return (_MORE if end == offset or data[offset] == _FINAL_TEXT else _NOT_PLAIN), 0
    if data[offset] != _FINAL_TEXT or not data[offset + 1] & 0x80:
        return _NOT_PLAIN, 0  # not a final text frame, or unmasked (autobahn refuses it)
    size = data[offset + 1] & 0x7F
    head = offset + 2
    if size >= 126:
        width, smallest = (2, 126) if size == 126 else (8, 65536)
        if end - head < width:
            return _MORE, 0
        size = (_UNPACK_SHORT if width == 2 else _UNPACK_LONG)(data, head)[0]
        if size < smallest:
            return _NOT_PLAIN, 0  # not the shortest length encoding: autobahn refuses it
        head += width
    if max_payload and size > max_payload:
        return _NOT_PLAIN, 0
    if end - head < 4:
        return _MORE, 0
    return head, size


def split_text_frames(data: bytes, max_payload: int) -> Tuple[List[str], int]:
    """
    The texts of the whole, final, masked, valid UTF-8 text frames of at
    most C{max_payload} bytes (0: any size) at the start of C{data}, and
    the offset where the first frame that is not one of them (or the end)
    starts.
    """
    texts: List[str] = []
    offset = 0
    end = len(data)
    while offset < end:
        head, size = _plain_header(data, offset, max_payload)
        if head < 0:
            break
        start = head + 4
        stop = start + size
        if stop > end:
            break
        try:
            text = unmask(data[start:stop], data[head:start]).decode("utf-8")
        except UnicodeDecodeError:
            break
        texts.append(text)
        offset = stop
    return texts, offset


def partial_text_frame(rest: bytes, max_payload: int) -> bool:
    """
    Whether C{rest} (what L{split_text_frames} left) is the start of a frame
    it would have taken had the rest of the frame been there: the front end
    keeps such a start for its next read instead of handing it to
    autobahn, which would then read every later frame itself (a sender's
    reads often end inside a frame).
    """
    if not rest:
        return False
    head, size = _plain_header(rest, 0, max_payload)
    if head == _MORE:
        return True
    return head >= 0 and len(rest) < head + 4 + size
