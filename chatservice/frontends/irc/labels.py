"""
IRCv3 C{labeled-response}: the replies to a command sent with a C{label}
tag carry that label.  One reply line gets the tag itself; several are
wrapped in a C{labeled-response} batch (with the C{batch} capability);
none gives an C{ACK}.
"""

from typing import List, Optional

from .wire import escape_tag_value, message

CRLF = b"\r\n"


def _tag_section(line: bytes) -> bytes:
    """The tags of C{line} (without the C{@}), or C{b""}."""
    if line.startswith(b"@"):
        return line[1:].split(b" ", 1)[0]
    return b""


def add_tag(line: bytes, tag: bytes) -> bytes:
    """C{line} (no CRLF) with C{tag} (C{key=value}) first among its tags."""
    if line.startswith(b"@"):
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line


def in_batch(line: bytes) -> bool:
    """Whether C{line} already belongs to a batch (a nested one, such as chat history)."""
    return any(item.startswith(b"batch=") for item in _tag_section(line).split(b";"))


class LabeledReply:
    """
    The lines written in answer to one labeled command, gathered until the
    command is done and then sent as L{label_lines} makes them.

    @ivar label: the client's label.
    @ivar lines: the bytes gathered so far.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: List[bytes] = []

    def render(self, server: str, ref: Optional[str]) -> bytes:
        """
        The gathered lines labeled: C{ref} is the name of the batch to use
        for several lines (L{None}: the client has no C{batch}, and only a
        lone line or an C{ACK} can carry the label).
        """
        lines = [line for line in b"".join(self.lines).split(CRLF) if line]
        label = escape_tag_value(self.label)
        tag = b"label=" + label.encode("utf-8")
        if not lines:
            return message(server, "ACK", tags={"label": label})
        if len(lines) == 1:
            return add_tag(lines[0], tag) + CRLF
        if ref is None:
            return CRLF.join(lines) + CRLF
        out = [message(server, "BATCH", "+" + ref, "labeled-response", tags={"label": label})]
        batch = b"batch=" + ref.encode("ascii")
        out += [(line if in_batch(line) else add_tag(line, batch)) + CRLF for line in lines]
        out.append(message(server, "BATCH", "-" + ref))
        return b"".join(out)
