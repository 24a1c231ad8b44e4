"""
An IRC client over a L{StringTransport}, for unit tests of the IRC front
end: L{IRCFakeClient} sends raw IRC lines and reads back what the server
wrote; L{irc_factory} puts an IRC factory over a line factory's chat, so
telnet and IRC fake clients share one chat.
"""

from typing import List, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatservice.frontends.irc.factory import IRCFactory


def irc_factory(line_factory, **options) -> IRCFactory:
    """An L{IRCFactory} over the same chat as C{line_factory}."""
    return IRCFactory(line_factory.chat, **options)


class IRCFakeClient:
    """
    One IRC connection through a L{StringTransport}: L{send} raw lines,
    read replies with L{take}, L{numerics} and L{commands}.
    """

    _next_port = 50000

    def __init__(self, factory: IRCFactory, host: str = "127.0.0.1") -> None:
        IRCFakeClient._next_port += 1
        self.factory = factory
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", host, IRCFakeClient._next_port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        self._seen = 0

    def send(self, *lines: str) -> None:
        """Send each line, ending it with CRLF."""
        for line in lines:
            self.protocol.dataReceived(line.encode("utf-8") + b"\r\n")

    def feed(self, data: bytes) -> None:
        """Deliver raw bytes as if read from the socket."""
        self.protocol.dataReceived(data)

    def lines(self) -> List[str]:
        """Every line the server wrote so far, without CRLF."""
        text = self.transport.value().decode("utf-8")
        assert text == "" or text.endswith("\r\n"), text
        return text.split("\r\n")[:-1]

    def take(self) -> List[str]:
        """The lines written since the last call to L{take}."""
        lines = self.lines()
        new, self._seen = lines[self._seen:], len(lines)
        return new

    @staticmethod
    def words(line: str) -> List[str]:
        """A line's words after its tags and source."""
        words = line.split(" ")
        while words and words[0][:1] in ("@", ":"):
            words.pop(0)
        return words

    def numerics(self, lines: Optional[List[str]] = None) -> List[str]:
        """The numerics among C{lines} (default: L{take}), in order."""
        lines = self.take() if lines is None else lines
        return [self.words(line)[0] for line in lines
                if self.words(line) and self.words(line)[0].isdigit()]

    def register(self, nick: str, *before: str) -> List[str]:
        """Send C{before} lines, then NICK and USER; return the replies."""
        self.send(*before, f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
        return self.take()

    @property
    def user(self):
        return self.protocol.user

    @property
    def closed(self) -> bool:
        """Whether the server asked for the connection to be closed."""
        return self.transport.disconnecting or self.transport.disconnected
