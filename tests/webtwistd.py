"""
A C{twistd chat} subprocess with the web front end on (C{--web-port
tcp:0}), for the WebSocket and browser tests: where its page is, read
from its log like the chat's own port.
"""

import re
import time

from twistd_process import START_TIMEOUT, Twistd, start_twistd

#: What Twisted logs when the web port listens.
WEB_LISTENING = re.compile(r"\bWebSite starting on (\d+)$", re.MULTILINE)
WEB_PORT = "tcp:0:interface=127.0.0.1"


def web_port(server: Twistd) -> int:
    """The web port of C{server}, from its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = WEB_LISTENING.search(server.log())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no web port in the log:\n{server.log()}")


def start_web(tmp_path, *args) -> Twistd:
    """Start C{twistd -n chat --web-port tcp:0 ARGS}; its C{web} attribute is the web port."""
    server = start_twistd(tmp_path, "--web-port", WEB_PORT, *args)
    server.web = web_port(server)  # type: ignore[attr-defined]
    return server
