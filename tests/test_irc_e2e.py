"""
End to end: C{twistd -n chat --irc-port ... --port ...} as a subprocess, a
real IRC client (the C{irc} package from PyPI) and a netcat-style
L{BlockingClient} in the same #lobby, each seeing the other's lines.
"""

import re
import time

import irc.client
import pytest

from netclient import BlockingClient
from twistd_process import ANY_PORT, START_TIMEOUT, start_twistd

#: Seconds the IRC client waits for one expected event.
IRC_TIMEOUT = 10.0
#: What Twisted logs when the IRC front end listens on a TCP port.
IRC_LISTENING = re.compile(r"\bIRCFactory starting on (\d+)$", re.MULTILINE)


def irc_port(running) -> int:
    """The IRC port of a started twistd, read from its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        found = IRC_LISTENING.search(running.log())
        if found:
            return int(found.group(1))
        if time.monotonic() > deadline:
            pytest.fail(f"no IRC port in the log:\n{running.log()}")
        time.sleep(0.05)


class IRCUser:
    """An C{irc.client} connection that records every event it gets."""

    def __init__(self, port: int, nick: str) -> None:
        self.reactor = irc.client.Reactor()
        self.events = []
        self.reactor.add_global_handler("all_events", self._record, -10)
        self.connection = self.reactor.server().connect("127.0.0.1", port, nick)

    def _record(self, connection, event) -> None:
        self.events.append(event)

    def expect(self, predicate, timeout: float = IRC_TIMEOUT):
        """Return the first recorded event matching C{predicate}, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    self.events.remove(event)
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching IRC event in {timeout}s; got "
                    f"{[(e.type, e.source, e.target, e.arguments) for e in self.events]}")
            self.reactor.process_once(0.05)

    def close(self) -> None:
        """Quit and close."""
        if self.connection.is_connected():
            self.connection.quit("bye")
            self.connection.close()


@pytest.fixture
def server(tmp_path):
    """
    C{twistd -n chat --port tcp:0:... --irc-port tcp:0:...} as a subprocess,
    stopped afterwards whatever happens; yields (line port, IRC port).
    """
    running = start_twistd(tmp_path, "--irc-port", ANY_PORT, "--motd", "hello irc")
    try:
        yield running.port, irc_port(running)
    finally:
        running.stop()


def test_irc_client_and_netcat_user_chat_in_the_lobby(server):
    """A real IRC client registers, joins #lobby and talks with a netcat user both ways."""
    line_port, irc_port = server
    carol = IRCUser(irc_port, "carol")
    try:
        welcome = carol.expect(lambda e: e.type == "welcome")
        assert welcome.target == "carol"
        carol.expect(lambda e: e.type == "motd" and "hello irc" in e.arguments[0])
        carol.expect(lambda e: e.type == "endofmotd")
        with BlockingClient(line_port) as dave:
            dave.expect("What's your name?")
            dave.say("dave")
            dave.expect(lambda line: line == "-> You joined #lobby")
            carol.connection.join("#lobby")
            carol.expect(lambda e: e.type == "join" and e.target == "#lobby"
                         and e.source.nick == "carol")
            names = carol.expect(lambda e: e.type == "namreply")
            assert set(names.arguments[2].split()) == {"carol", "dave"}
            dave.expect(lambda line: line == "-> carol joined #lobby")

            dave.say("hello from netcat")
            said = carol.expect(lambda e: e.type == "pubmsg")
            assert (said.source.nick, said.target, said.arguments) == (
                "dave", "#lobby", ["hello from netcat"])
            carol.connection.privmsg("#lobby", "hello from IRC")
            dave.expect(lambda line: line == "<carol> hello from IRC")
            carol.connection.action("#lobby", "waves")
            dave.expect(lambda line: line == "* carol waves")
            dave.say("/me bows")
            acted = carol.expect(lambda e: e.type == "action")
            assert (acted.source.nick, acted.arguments) == ("dave", ["bows"])
            carol.connection.privmsg("dave", "a secret")
            dave.expect(lambda line: line == "[private] <carol> a secret")
            dave.say("/msg carol a reply")
            private = carol.expect(lambda e: e.type == "privmsg")
            assert (private.source.nick, private.arguments) == ("dave", ["a reply"])

            carol.connection.quit("off to bed")
            dave.expect(lambda line: line == "<- carol quit (off to bed)")
    finally:
        carol.close()
