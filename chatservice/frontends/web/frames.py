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


def text_frame(payload: bytes) -> bytes:
    """C{payload} as one final, unmasked WebSocket text frame (from the server)."""
    if payload is _last_framed[0]:
        return _last_framed[1]
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    frame = head + payload
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
    while end - offset >= 6:
        if data[offset] != _FINAL_TEXT:
            break
        size = data[offset + 1]
        if not size & 0x80:
            break  # unmasked: autobahn refuses it
        size &= 0x7F
        head = offset + 2
        if size == 126:
            if end - head < 2:
                break
            size = _UNPACK_SHORT(data, head)[0]
            if size < 126:
                break  # not the shortest length encoding: autobahn refuses it
            head += 2
        elif size == 127:
            if end - head < 8:
                break
            size = _UNPACK_LONG(data, head)[0]
            if size < 65536:
                break
            head += 8
        if max_payload and size > max_payload:
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
    have = len(rest)
    if not have or rest[0] != _FINAL_TEXT:
        return False
    if have < 2:
        return True
    size = rest[1]
    if not size & 0x80:
        return False
    size &= 0x7F
    head = 2
    if size == 126:
        if have < 4:
            return True
        size = _UNPACK_SHORT(rest, 2)[0]
        if size < 126:
            return False
        head = 4
    elif size == 127:
        if have < 10:
            return True
        size = _UNPACK_LONG(rest, 2)[0]
        if size < 65536:
            return False
        head = 10
    if max_payload and size > max_payload:
        return False
    return have < head + 4 + size
