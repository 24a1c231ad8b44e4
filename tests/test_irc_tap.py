"""
C{twistd chat --irc-port}: the options and the services they build (nothing
listens until the service starts).
"""

import pytest
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import task
from twisted.python import usage

from chatservice.frontends.irc.factory import IRCFactory
from chatservice.frontends.line.factory import ChatFactory
from chatservice.tap import Options, makeService


def build(tmp_path, *args):
    options = Options()
    options.parseOptions(["--no-database", "--data-dir", str(tmp_path), *args])
    return options, makeService(options, task.Clock())


def endpoint_factories(service):
    return [type(s.factory) for s in service if isinstance(s, StreamServerEndpointService)]


def test_irc_port_builds_an_irc_factory_over_the_same_chat(tmp_path):
    """Each --irc-port adds a listening service with one IRCFactory over the line protocol's Chat; the ping options reach it."""
    options, service = build(tmp_path, "--irc-port", "tcp:6667", "--irc-port", "tcp:6697",
                             "--server-name", "irc.example", "--irc-ping-interval", "30",
                             "--irc-ping-timeout", "20")
    assert sorted(f.__name__ for f in endpoint_factories(service)) == [
        "ChatFactory", "IRCFactory", "IRCFactory"]
    irc = service.irc_factory
    assert isinstance(irc, IRCFactory) and irc.chat is service.chat
    assert (irc.server_name, irc.ping_interval, irc.ping_timeout) == ("irc.example", 30, 20)
    assert not service.running


def test_no_irc_port_means_no_irc(tmp_path):
    """Without --irc-port the server speaks only the line protocol."""
    options, service = build(tmp_path)
    assert options["irc-ports"] == []
    assert endpoint_factories(service) == [ChatFactory]


def test_bad_irc_port_is_a_usage_error(tmp_path):
    """A malformed --irc-port is refused before anything starts, naming the option."""
    with pytest.raises(usage.UsageError, match="--irc-port 'tcp:nope'"):
        build(tmp_path, "--irc-port", "tcp:nope")
