"""
End to end: the installed package run by the C{twistd} next to this Python,
the way an operator starts it, and people talking to it over plain sockets
the way netcat does.  No reactor here: these are ordinary blocking tests.
"""

import re
import signal
import subprocess

import pytest

from twistd_process import EXIT_TIMEOUT, log_in, run_twistd, start_twistd

SHUTDOWN_LINE = "-- The server is shutting down. Goodbye!"
MOTD = "hello e2e"


@pytest.fixture
def server(tmp_path):
    """
    Start C{twistd -n --pidfile= chat} on a free port of 127.0.0.1, wait
    until it accepts connections, and make sure it is gone afterwards.
    """
    running = start_twistd(tmp_path, "--motd", MOTD)
    try:
        yield running
    finally:
        running.stop()


def test_chat_session_then_sigterm(server):
    """Two netcat users chat in rooms and privately; SIGTERM tells them goodbye and twistd shuts down in order with a clean log."""
    with server.connect() as alice, server.connect() as bob:
        log_in(alice, "alice", "alice", motd=MOTD)
        log_in(bob, "login bob", "bob", motd=MOTD)
        bob.expect(lambda line: line == "-- Here with you: alice (2 users)")
        alice.expect(lambda line: line == "-> bob joined #lobby")

        alice.say("hi bob")
        bob.expect(lambda line: line == "<alice> hi bob")
        bob.say("hello alice")
        alice.expect(lambda line: line == "<bob> hello alice")

        bob.say("/join games")
        bob.expect(lambda line: line == "-> You joined #games")
        bob.expect(lambda line: line == "-- You are alone in #games.")
        alice.say("still in the lobby")
        bob.expect(lambda line: line == "[#lobby] <alice> still in the lobby")
        alice.say("/join #games")
        alice.expect(lambda line: line == "-> You joined #games")
        bob.expect(lambda line: line == "-> alice joined #games")
        bob.say("let's play")
        alice.expect(lambda line: line == "<bob> let's play")

        alice.say("/msg bob a secret")
        alice.expect(lambda line: line == "[private to bob] <alice> a secret")
        bob.expect(lambda line: line == "[private] <alice> a secret")

        with server.connect() as carol:
            log_in(carol, "carol", "carol", motd=MOTD)
            alice.expect(lambda line: line == "-> carol joined #lobby")
            carol.say("/quit see you")
            carol.expect(lambda line: line == "-- Goodbye, carol!")
            carol.expect_eof()
        alice.expect(lambda line: line == "<- carol quit (see you)")
        alice.sync("a1")
        bob.sync("b1")

        server.process.send_signal(signal.SIGTERM)
        for client in (alice, bob):
            client.expect(lambda line: line == SHUTDOWN_LINE)
            client.expect_eof()
    try:
        code = server.process.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"twistd still running {EXIT_TIMEOUT}s after SIGTERM:\n{server.log()}")
    log = server.log()
    # twistd ends a run stopped by a signal by re-raising that signal, so
    # that its parent sees "killed by SIGTERM" (Unix convention; systemd
    # counts it as a clean exit).  Either way the shutdown must be orderly.
    assert code in (0, -signal.SIGTERM), log
    assert "Server Shut Down." in log, log
    assert "login alice" in log
    assert "login bob" in log
    assert "Traceback" not in log, log
    assert "Unhandled" not in log, log
    assert "a secret" not in log  # what people say is not logged


def test_twistd_lists_the_chat_plugin(tmp_path):
    """'twistd --help' lists the chat subcommand of the installed dropin."""
    code, out = run_twistd(tmp_path, "--help")
    assert code == 0, out
    assert re.search(r"^\s+chat\s", out, re.MULTILINE), out


def test_twistd_chat_help(tmp_path):
    """'twistd chat --help' exits 0 and documents --port."""
    code, out = run_twistd(tmp_path, "chat", "--help")
    assert code == 0, out
    assert "--port" in out
    assert "Traceback" not in out


def test_bad_port_is_a_usage_error(tmp_path):
    """'twistd -n chat --port nonsense:1' stops before starting, with a usage message about --port and no traceback."""
    code, out = run_twistd(tmp_path, "-n", "chat", "--port", "nonsense:1")
    assert "Usage:" in out
    assert "--port 'nonsense:1' is not a usable endpoint" in out
    assert "Traceback" not in out
    assert "Server Shut Down." not in out  # it never started
    assert not (tmp_path / "twistd.pid").exists()


# twistd before Twisted 26.10 prints a usage error and then exits 0
# (twisted.application.app.run has no sys.exit(1) after it); Twisted 26.10
# needs Python 3.10+, so on Python 3.9 (Debian's PyPy) every install has it.
def test_bad_port_exits_non_zero(tmp_path):
    """'twistd -n chat --port nonsense:1' exits with status 1, so scripts and init systems see the failure (Twisted before 26.10 exited 0)."""
    code, out = run_twistd(tmp_path, "-n", "chat", "--port", "nonsense:1")
    assert code == 1, out
