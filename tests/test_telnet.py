"""
Telnet negotiation: L{chatservice.frontends.line.telnet.TelnetFilter} on its own, and the
line protocol with telnet bytes mixed into what users type.

Telnet replies are raw bytes in the client's output (not UTF-8 lines), so
these tests read C{FakeClient.output()} rather than C{lines()}.
"""

from typing import List, Tuple

import pytest
from conftest import FakeClient
from hypothesis import given, settings
from hypothesis import strategies as st

from chatservice.frontends.line.telnet import DO, DONT, IAC, SB, SE, WILL, WONT, TelnetFilter

ECHO, SGA, TIMING_MARK, TTYPE, NAWS, LINEMODE = 1, 3, 6, 24, 31, 34
NOP, DM, BRK, IP, AO, AYT, EC, EL, GA = 241, 242, 243, 244, 245, 246, 247, 248, 249

#: What inetutils telnet sends for ^C: IAC IP, IAC DO TIMING-MARK.
CTRL_C = b"\xff\xf4\xff\xfd\x06"


def cmd(*codes: int) -> bytes:
    """Build telnet bytes from integer codes."""
    return bytes(codes)


class Recorder:
    """A filter with its replies collected in a list."""

    def __init__(self) -> None:
        self.replies: List[bytes] = []
        self.filter = TelnetFilter(self.replies.append)

    def feed(self, *chunks: bytes) -> bytes:
        return b"".join(self.filter.feed(chunk) for chunk in chunks)

    def replied(self) -> bytes:
        return b"".join(self.replies)


def run_filter(*chunks: bytes) -> Tuple[bytes, bytes]:
    """Feed C{chunks} to a fresh filter; return (data kept, replies sent)."""
    recorder = Recorder()
    data = recorder.feed(*chunks)
    return data, recorder.replied()


# -- the filter on its own ----------------------------------------------------------


def test_hide_input_says_nothing_to_a_client_that_never_negotiated():
    """A netcat client (no telnet command seen) never gets negotiation bytes."""
    recorder = Recorder()
    recorder.feed(b"alice\n")
    recorder.filter.hide_input(True)
    recorder.filter.hide_input(False)
    assert recorder.replied() == b""


def test_hide_input_offers_echo_to_a_telnet_client_and_takes_it_back():
    """After a telnet command, hiding offers WILL ECHO; DO ECHO is accepted silently; showing sends WONT ECHO; DONT ECHO is not answered."""
    recorder = Recorder()
    recorder.feed(cmd(IAC, NOP))
    assert recorder.filter.negotiating
    recorder.filter.hide_input(True)
    recorder.filter.hide_input(True)  # once is enough
    assert recorder.replied() == cmd(IAC, WILL, ECHO)
    recorder.replies.clear()
    assert recorder.feed(cmd(IAC, DO, ECHO) + b"secret\r\n") == b"secret\r\n"
    assert recorder.replied() == b""
    recorder.filter.hide_input(False)
    recorder.filter.hide_input(False)
    assert recorder.replied() == cmd(IAC, WONT, ECHO)
    recorder.replies.clear()
    recorder.feed(cmd(IAC, DONT, ECHO))
    assert recorder.replied() == b""


def test_echo_refused_by_the_client_is_not_pressed():
    """A client that answers WILL ECHO with DONT ECHO gets no further ECHO bytes."""
    recorder = Recorder()
    recorder.feed(cmd(IAC, DO, SGA))
    recorder.filter.hide_input(True)
    recorder.feed(cmd(IAC, DONT, ECHO))
    recorder.replies.clear()
    recorder.filter.hide_input(False)
    recorder.filter.hide_input(True)  # the next password prompt
    assert recorder.replied() == b""


def test_client_turning_echo_off_after_agreeing_is_acknowledged():
    """DONT ECHO while the server echoes is acknowledged with WONT ECHO (RFC 854)."""
    recorder = Recorder()
    recorder.feed(cmd(IAC, NOP))
    recorder.filter.hide_input(True)
    recorder.feed(cmd(IAC, DO, ECHO))
    recorder.replies.clear()
    recorder.feed(cmd(IAC, DONT, ECHO))
    assert recorder.replied() == cmd(IAC, WONT, ECHO)
    recorder.replies.clear()
    recorder.filter.hide_input(False)
    assert recorder.replied() == b""



def test_plain_data_passes_untouched():
    """Bytes with no IAC are returned as they are, with no reply."""
    assert run_filter(b"hello\r\nworld\n") == (b"hello\r\nworld\n", b"")


@pytest.mark.parametrize("option", [ECHO, SGA, TIMING_MARK, TTYPE, NAWS, LINEMODE, 0, 200])
def test_do_is_refused_with_wont(option):
    """IAC DO x is answered IAC WONT x and removed from the data."""
    assert run_filter(b"a" + cmd(IAC, DO, option) + b"b") == (b"ab", cmd(IAC, WONT, option))


@pytest.mark.parametrize("option", [ECHO, SGA, TTYPE, NAWS, LINEMODE, 0, 200])
def test_will_is_refused_with_dont(option):
    """IAC WILL x is answered IAC DONT x and removed from the data."""
    assert run_filter(b"a" + cmd(IAC, WILL, option) + b"b") == (b"ab", cmd(IAC, DONT, option))


@pytest.mark.parametrize("verb", [DONT, WONT])
def test_dont_and_wont_are_not_answered(verb):
    """IAC DONT/WONT x are removed and never answered (answering would loop)."""
    assert run_filter(b"a" + cmd(IAC, verb, ECHO) + b"b") == (b"ab", b"")


def test_several_negotiations_answered_in_order():
    """Each request gets its own refusal, in the order received."""
    data, replies = run_filter(
        cmd(IAC, WILL, TTYPE, IAC, DO, ECHO, IAC, WILL, NAWS, IAC, DONT, SGA) + b"x"
    )
    assert data == b"x"
    assert replies == cmd(IAC, DONT, TTYPE, IAC, WONT, ECHO, IAC, DONT, NAWS)


def test_subnegotiation_removed():
    """IAC SB ... IAC SE disappears, payload included, with no reply."""
    stream = b"be" + cmd(IAC, SB, TTYPE, 0) + b"xterm" + cmd(IAC, SE) + b"fore"
    assert run_filter(stream) == (b"before", b"")


def test_subnegotiation_with_escaped_iac_inside():
    """An IAC IAC inside a subnegotiation does not end it."""
    stream = cmd(IAC, SB, NAWS, 0, 80, IAC, IAC, 24) + cmd(IAC, SE) + b"ok"
    assert run_filter(stream) == (b"ok", b"")


def test_subnegotiation_containing_negotiation_verbs_is_not_answered():
    """Bytes that look like DO/WILL inside a subnegotiation are payload, not requests."""
    stream = cmd(IAC, SB, TTYPE, DO, ECHO, WILL, SGA, IAC, SE) + b"ok"
    assert run_filter(stream) == (b"ok", b"")


def test_escaped_iac_is_a_literal_ff():
    """IAC IAC in the data stands for one 0xFF byte."""
    assert run_filter(b"a" + cmd(IAC, IAC) + b"b") == (b"a\xffb", b"")


@pytest.mark.parametrize("code", [NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, 0x01, 0x41])
def test_simple_commands_removed(code):
    """IAC NOP/DM/BRK/IP/AO/AYT/EC/EL/GA (and unknown commands) are dropped silently."""
    assert run_filter(b"a" + cmd(IAC, code) + b"b") == (b"ab", b"")


def test_ctrl_c_from_inetutils_telnet():
    """^C (IAC IP IAC DO TIMING-MARK) leaves no data and is answered IAC WONT TIMING-MARK."""
    assert run_filter(b"abc" + CTRL_C + b"\r\n") == (b"abc\r\n", cmd(IAC, WONT, TIMING_MARK))


# A stream with every kind of sequence in it, for the splitting tests.
MIXED = (
    b"hi"
    + cmd(IAC, DO, ECHO)
    + b" there"
    + cmd(IAC, SB, TTYPE, 0)
    + b"xterm"
    + cmd(IAC, IAC, 7, IAC, SE)
    + b" "
    + cmd(IAC, IAC)
    + b"!"
    + cmd(IAC, WILL, NAWS, IAC, WONT, SGA, IAC, NOP)
    + CTRL_C
    + b"end\r\n"
)
MIXED_DATA = b"hi there \xff!end\r\n"
MIXED_REPLIES = cmd(IAC, WONT, ECHO, IAC, DONT, NAWS, IAC, WONT, TIMING_MARK)


def test_mixed_stream_in_one_read():
    """The reference stream, in one read, gives the expected data and replies."""
    assert run_filter(MIXED) == (MIXED_DATA, MIXED_REPLIES)


@pytest.mark.parametrize("cut", range(1, len(MIXED)))
def test_split_at_every_point(cut):
    """Splitting the stream in two at any byte gives the same data and replies."""
    assert run_filter(MIXED[:cut], MIXED[cut:]) == (MIXED_DATA, MIXED_REPLIES)


def test_byte_by_byte():
    """Feeding one byte per read gives the same data and replies."""
    chunks = [MIXED[i:i + 1] for i in range(len(MIXED))]
    assert run_filter(*chunks) == (MIXED_DATA, MIXED_REPLIES)


def test_split_at_every_pair_of_points():
    """Splitting the stream in three at any two points gives the same result."""
    for first in range(1, len(MIXED)):
        for second in range(first, len(MIXED)):
            result = run_filter(MIXED[:first], MIXED[first:second], MIXED[second:])
            assert result == (MIXED_DATA, MIXED_REPLIES), (first, second)


telnet_pieces = st.lists(
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from([
            cmd(IAC, DO, ECHO), cmd(IAC, WILL, TTYPE), cmd(IAC, DONT, 5),
            cmd(IAC, WONT, 5), cmd(IAC, IAC), cmd(IAC, SB, 24, 0),
            cmd(IAC, SE), cmd(IAC, NOP), CTRL_C, b"\xff", b"text",
        ]),
    ),
    max_size=30,
).map(b"".join)


echo_steps = st.lists(st.one_of(
    st.booleans(),  # hide_input(True / False)
    st.sampled_from([cmd(IAC, DO, ECHO), cmd(IAC, DONT, ECHO), cmd(IAC, NOP),
                     cmd(IAC, WILL, ECHO), cmd(IAC, WONT, ECHO), b"abc\r\n"]),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps=echo_steps)
def test_echo_negotiation_never_loops_or_repeats(steps):
    """
    Whatever the client answers and however often the password prompt comes
    and goes, every reply is one well-formed command, WILL ECHO is never
    offered twice without a WONT between, the data never keeps an IAC, and
    a client that never negotiated gets nothing.
    """
    recorder = Recorder()
    echo_replies = []
    for step in steps:
        before = len(recorder.replies)
        if isinstance(step, bool):
            recorder.filter.hide_input(step)
        else:
            assert b"\xff" not in recorder.feed(step)
        for reply in recorder.replies[before:]:
            assert len(reply) == 3 and reply[0] == IAC, reply
            if reply[2] == ECHO and reply[1] in (WILL, WONT):
                echo_replies.append(reply[1])
        if not recorder.filter.negotiating:
            assert recorder.replies == []
    for first, second in zip(echo_replies, echo_replies[1:]):
        # A WONT may answer an unprompted DO right after our own WONT; a WILL
        # is never offered twice without a WONT between.
        assert not (first == WILL and second == WILL), echo_replies


@settings(max_examples=300, deadline=None)
@given(stream=telnet_pieces, cuts=st.lists(st.integers(0, 300), max_size=8))
def test_random_chunking_is_invisible(stream, cuts):
    """However a stream is cut into reads, the data kept and replies sent are the same."""
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in zip(points, points[1:])]
    assert run_filter(*chunks) == run_filter(stream)


def test_endless_subnegotiation_keeps_no_buffer():
    """A subnegotiation that never ends swallows data without buffering it."""
    recorder = Recorder()
    assert recorder.feed(cmd(IAC, SB, TTYPE)) == b""
    for _ in range(100):
        assert recorder.feed(b"A" * 10000) == b""
    for value in vars(recorder.filter).values():  # at most an incomplete sequence kept
        assert not (isinstance(value, (bytes, bytearray, list)) and len(value) > 3), value
    # and it ends properly when IAC SE comes
    assert recorder.feed(cmd(IAC, SE) + b"back") == b"back"
    assert recorder.replied() == b""


# -- through the line protocol ---------------------------------------------------------


def raw_since(client: FakeClient, mark: int) -> bytes:
    """The bytes the server wrote to C{client} since output length C{mark}."""
    return client.output()[mark:]


def test_negotiation_at_name_prompt_refused_and_login_works(connect):
    """A telnet client negotiating before its name is refused and can still log in."""
    client = connect()
    mark = len(client.output())
    client.feed(cmd(IAC, DO, ECHO, IAC, WILL, TTYPE, IAC, WILL, NAWS) + b"alice\r\n")
    out = raw_since(client, mark)
    assert out.startswith(cmd(IAC, WONT, ECHO, IAC, DONT, TTYPE, IAC, DONT, NAWS))
    assert out[9:].decode("utf-8").startswith("-- Hello alice, welcome to testchat!\r\n")
    assert client.user.name == "alice"


def test_dont_and_wont_get_no_reply_in_session(connect):
    """DONT/WONT from the client produce no output at all."""
    alice = connect("alice")
    mark = len(alice.output())
    alice.feed(cmd(IAC, DONT, ECHO, IAC, WONT, ECHO))
    assert raw_since(alice, mark) == b""


def test_ctrl_c_does_not_break_the_session(connect):
    """After ^C as inetutils telnet sends it, the user keeps chatting."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    mark = len(bob.output())
    bob.feed(CTRL_C)
    assert raw_since(bob, mark) == cmd(IAC, WONT, TIMING_MARK)
    assert not bob.closed
    bob.feed(b"still here\r\n")
    assert alice.take() == ["<bob> still here"]
    bob.feed(b"typed half" + CTRL_C + b"\r\n")
    assert alice.take() == ["<bob> typed half"]
    assert b"\xff" not in alice.output()


def test_subnegotiation_split_across_reads_in_session(connect):
    """A terminal-type subnegotiation split over reads leaves the text around it intact."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"hel" + cmd(IAC, SB))
    bob.feed(cmd(TTYPE, 0) + b"xter")
    bob.feed(b"m" + cmd(IAC))
    bob.feed(cmd(SE) + b"lo\r\n")
    assert alice.take() == ["<bob> hello"]


@pytest.mark.parametrize("cut", range(1, len(MIXED)))
def test_session_split_at_every_point(connect, cut):
    """The reference stream, split anywhere, reaches others as exactly one clean line."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    mark = len(bob.output())
    bob.feed(MIXED[:cut])
    bob.feed(MIXED[cut:])
    # The literal 0xFF from IAC IAC is invalid UTF-8: shown as U+FFFD.
    assert alice.take() == ["<bob> hi there \ufffd!end"]
    assert raw_since(bob, mark) == MIXED_REPLIES
    assert b"\xff" not in alice.output()


def test_negotiation_never_reaches_other_users(connect):
    """Other users' output never contains a telnet byte, whatever the sender negotiates."""
    alice, bob = connect("alice"), connect("bob")
    bob.send("/join games")
    alice.send("/join games", "/join lobby")
    alice.take()
    for piece in (cmd(IAC, DO, ECHO), cmd(IAC, WILL, 1), CTRL_C,
                  cmd(IAC, SB, 24, 0) + b"vt100" + cmd(IAC, SE), cmd(IAC, AYT)):
        bob.feed(b"x" + piece + b"y\r\n")
        bob.feed(b"/me " + piece + b"waves\r\n")
    bob.feed(b"/msg alice " + CTRL_C + b"psst\r\n")
    lines = alice.take()
    assert lines == ["[#games] <bob> xy", "[#games] * bob waves"] * 5 + ["[private] <bob> psst"]
    assert b"\xff" not in alice.output()


def test_escaped_iac_in_text_becomes_replacement_character(connect):
    """IAC IAC (a literal 0xFF, never valid UTF-8) reaches others as U+FFFD."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(b"a" + cmd(IAC, IAC) + b"b\n")
    assert alice.take() == ["<bob> a\ufffdb"]


def test_endless_subnegotiation_in_session_keeps_memory_bounded(connect):
    """A subnegotiation with no end grows no buffer; text after IAC SE works again."""
    alice, bob = connect("alice"), connect("bob")
    alice.take()
    bob.feed(cmd(IAC, SB, TTYPE))
    for _ in range(50):
        bob.feed(b"z" * 65536 + b"\n")
        assert bob.protocol._buffer == b""
    assert alice.take() == []
    bob.feed(cmd(IAC, SE) + b"back\n")
    assert alice.take() == ["<bob> back"]
