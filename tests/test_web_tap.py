"""The web front end's options: --web-port, --web-allow-origin, --web-max-frame."""

import pytest
from twisted.internet import task
from twisted.python import usage

from chatservice.frontends.web.factory import MAX_FRAME
from chatservice.service import ListeningService
from chatservice.tap import Options, makeService


def parse(*args):
    options = Options()
    options.parseOptions(["--no-database", *args])
    return options


def test_the_web_is_off_unless_a_port_is_given():
    """No --web-port: nothing listens for the web."""
    options = parse()
    assert options["web-ports"] == [] and options["web-max-frame"] == MAX_FRAME
    service = makeService(options, task.Clock())
    assert not any(s.option == "--web-port" for s in service if isinstance(s, ListeningService))


def test_web_ports_and_origins_may_be_given_several_times():
    """Each --web-port listens with the one site; origins lose a trailing slash."""
    options = parse("--web-port", "tcp:0", "--web-port", "tcp:0:interface=127.0.0.1",
                    "--web-allow-origin", "https://chat.example.org/",
                    "--web-allow-origin", "http://localhost:3000", "--web-max-frame", "1024")
    service = makeService(options, task.Clock())
    web = [s for s in service if isinstance(s, ListeningService) and s.option == "--web-port"]
    assert [s.description for s in web] == ["tcp:0", "tcp:0:interface=127.0.0.1"]
    assert web[0].factory is web[1].factory
    assert service.web_factory.allowed_origins == {"https://chat.example.org",
                                                   "http://localhost:3000"}
    assert service.web_factory.maxFramePayloadSize == 1024


@pytest.mark.parametrize("origin", ["chat.example.org", "ftp://x", "https://x/path",
                                    "https://", "https://x?q=1"])
def test_a_bad_origin_is_a_usage_error(origin):
    """An origin is a scheme and a host (and port), nothing else."""
    with pytest.raises(usage.UsageError, match="not an origin"):
        parse("--web-allow-origin", origin)


def test_a_bad_web_port_is_a_usage_error():
    """A typo in --web-port is explained before anything starts."""
    with pytest.raises(usage.UsageError, match="--web-port"):
        parse("--web-port", "tpc:8080")
