"""
A small, bounded telnet filter for a line-oriented chat.

Telnet clients send negotiation sequences (C{IAC DO ...}, C{IAC SB ... IAC
SE}) mixed into the text.  L{TelnetFilter} removes them, refuses every option
the client asks for (this server is a plain NVT in line mode), and keeps no
buffer beyond the three bytes of an incomplete sequence, so no input can make
it grow.

One option the server offers itself: ECHO, while a password is typed
(L{TelnetFilter.hide_input}), so that the client stops echoing it.  Only to
a client that has already sent telnet commands: netcat users would see the
negotiation bytes as garbage.

Why not L{twisted.conch.telnet.TelnetTransport}: it parses every byte in a
Python loop (too slow for a busy chat), and it drops the client on C{IAC}
followed by an unknown byte (C{ValueError('Stumped')}).  This filter costs
one C{bytes.find} per read when there is no C{IAC} at all, which is almost
always.
"""

from typing import Callable, List

IAC = 0xFF
DONT = 0xFE
DO = 0xFD
WONT = 0xFC
WILL = 0xFB
SB = 0xFA
SE = 0xF0
#: The ECHO option (RFC 857): "I will echo", so the client stops echoing.
ECHO = 0x01

_IAC_BYTE = b"\xff"

# Parser states.
_DATA = 0
_COMMAND = 1  # after IAC
_OPTION = 2  # after IAC WILL/WONT/DO/DONT
_SUBNEGOTIATION = 3  # inside IAC SB ...
_SUBNEGOTIATION_IAC = 4  # IAC inside a subnegotiation

# Our side of the ECHO option (RFC 1143's states, without the queue bit).
_ECHO_OFF = 0
_ECHO_WANT_ON = 1  # sent WILL, waiting for DO
_ECHO_ON = 2
_ECHO_WANT_OFF = 3  # sent WONT, waiting for DONT


class TelnetFilter:
    """
    Strips telnet commands from a byte stream, across reads.

    @ivar reply: called with the bytes to send back to the client (refusals
        of the options it asks for, and the ECHO offer).
    @ivar negotiating: whether the client has sent a telnet command, so it
        is a telnet client that understands negotiation.
    """

    def __init__(self, reply: Callable[[bytes], None]) -> None:
        self.reply = reply
        self.negotiating = False
        self._state = _DATA
        self._verb = 0
        self._echo = _ECHO_OFF
        self._echo_refused = False  # the client said DONT ECHO: never offer again

    def hide_input(self, hidden: bool) -> None:
        """
        Ask a telnet client to stop (C{hidden}) or resume echoing what its
        user types, for a password prompt.  Nothing is sent to a client
        that has not shown it speaks telnet.
        """
        if hidden:
            if (self.negotiating and not self._echo_refused
                    and self._echo in (_ECHO_OFF, _ECHO_WANT_OFF)):
                self._echo = _ECHO_WANT_ON
                self.reply(bytes((IAC, WILL, ECHO)))
        elif self._echo in (_ECHO_ON, _ECHO_WANT_ON):
            self._echo = _ECHO_WANT_OFF
            self.reply(bytes((IAC, WONT, ECHO)))

    def feed(self, data: bytes) -> bytes:
        """
        Return C{data} without its telnet commands.  An escaped C{IAC IAC}
        stands for a literal 0xFF byte and is kept as one.
        """
        if self._state == _DATA and data.find(_IAC_BYTE) < 0:
            return data
        out: List[bytes] = []
        start = 0
        state = self._state
        length = len(data)
        index = 0
        while index < length:
            if state == _DATA:
                found = data.find(_IAC_BYTE, index)
                if found < 0:
                    break
                out.append(data[start:found])
                index = found + 1
                state = _COMMAND
                continue
            byte = data[index]
            index += 1
            if state == _COMMAND:
                if byte == IAC:
                    out.append(_IAC_BYTE)
                    state = _DATA
                elif byte in (WILL, WONT, DO, DONT):
                    self.negotiating = True
                    self._verb = byte
                    state = _OPTION
                elif byte == SB:
                    self.negotiating = True
                    state = _SUBNEGOTIATION
                else:
                    # NOP, AYT, IP, GA and any unknown command: nothing to do.
                    self.negotiating = True
                    state = _DATA
            elif state == _OPTION:
                self._answer(self._verb, byte)
                state = _DATA
            elif state == _SUBNEGOTIATION:
                found = data.find(_IAC_BYTE, index - 1)
                if found < 0:
                    index = length
                else:
                    index = found + 1
                    state = _SUBNEGOTIATION_IAC
            else:  # _SUBNEGOTIATION_IAC
                state = _DATA if byte == SE else _SUBNEGOTIATION
            start = index
        if state == _DATA and start < length:
            out.append(data[start:])
        self._state = state
        return b"".join(out)

    def _answer(self, verb: int, option: int) -> None:
        if option == ECHO and verb in (DO, DONT):
            self._answer_echo(verb)
            return
        # We enable no other option: refuse what the client offers or asks
        # for.  Acknowledging a refusal (WONT/DONT) would start a loop.
        if verb == DO:
            self.reply(bytes((IAC, WONT, option)))
        elif verb == WILL:
            self.reply(bytes((IAC, DONT, option)))

    def _answer_echo(self, verb: int) -> None:
        echo = self._echo
        if verb == DO:
            if echo == _ECHO_WANT_ON:
                self._echo = _ECHO_ON  # agreed: the client stops echoing
            elif echo == _ECHO_OFF:
                self.reply(bytes((IAC, WONT, ECHO)))  # asked unprompted: refuse
            # ON: already agreed; WANT_OFF: a stale answer, our WONT follows it
        else:  # DONT
            if echo == _ECHO_ON:
                self.reply(bytes((IAC, WONT, ECHO)))  # must be acknowledged
            if echo != _ECHO_WANT_OFF:  # not the answer to our own WONT
                self._echo_refused = True
            self._echo = _ECHO_OFF
