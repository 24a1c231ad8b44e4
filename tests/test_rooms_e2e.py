"""
Registered rooms across a restart of a real C{twistd -n chat} subprocess
over TCP: a room registered, given a topic, a ban, modes (a key and a
limit among them) and a second operator, is all there after a stop and a
start on the same data directory.
"""

import signal
import subprocess

import pytest

from twistd_process import EXIT_TIMEOUT, log_in, start_twistd

ALICE_PASSWORD = "Zebra-Quartz-417"
BOB_PASSWORD = "Mango-Violet-528"


def exactly(text: str):
    """A predicate for a line equal to C{text}."""
    return lambda line: line == text


def log_in_registered(client, name: str, password: str) -> None:
    """Log in as the registered C{name} with C{password}, and wait for the lobby."""
    client.expect("What's your name?")
    client.say(name)
    client.expect(lambda line: line.endswith("Password (or /back to choose another name):"))
    client.say(password)
    client.expect(exactly(f"-- Hello {name}, welcome to chatservice!"))
    client.expect(exactly("-> You joined #lobby"))


def stop(server) -> None:
    """SIGTERM C{server} and wait for it to exit cleanly."""
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"twistd still running {EXIT_TIMEOUT}s after SIGTERM:\n{server.log()}")
    assert code in (0, -signal.SIGTERM), server.log()


def test_a_registered_room_survives_a_restart(tmp_path):
    """Founder, second operator, topic, ban, +m, key and limit survive; the banned stay out; operators get @ back."""
    data = str(tmp_path / "data")
    options = ("--flood-rate", "0", "--data-dir", data)
    server = start_twistd(tmp_path, *options)
    try:
        with server.connect() as alice, server.connect() as bob:
            log_in(alice, "alice")
            alice.say(f"/register {ALICE_PASSWORD}")
            alice.expect(lambda line: line.startswith("-- The name alice is now registered"))
            log_in(bob, "bob")
            bob.say(f"/register {BOB_PASSWORD}")
            bob.expect(lambda line: line.startswith("-- The name bob is now registered"))
            alice.say("/join games", "/room register")
            alice.expect(lambda line: line.startswith("-- #games is now registered to you"))
            bob.say("/join games")
            bob.expect(exactly("-> You joined #games"))
            alice.say("/topic Board games only", "/ban eve*", "/op bob", "/mode +mk sesame",
                      "/mode +l 5")
            alice.sync("all set")
            bob.sync("bob too")
        stop(server)
    finally:
        server.stop()
    first_log = server.log()
    assert "rooms: alice registered #games" in first_log
    assert "Traceback" not in first_log

    server = start_twistd(tmp_path, *options)
    try:
        with server.connect() as eve, server.connect() as carol:
            log_in(eve, "eve2")
            eve.say("/rooms")
            eve.expect(lambda line: line.startswith("--   #games (0 users) [+klmn]"))
            eve.say("/join games sesame")
            eve.expect(lambda line: line.startswith("!! You are banned from #games"))
            log_in(carol, "carol")
            carol.say("/join games")
            carol.expect(exactly("!! #games needs a key: /join #games KEY."))
            carol.say("/join games sesame")
            carol.expect(exactly("-> You joined #games"))
            carol.expect(exactly("-- Topic: Board games only"))
            carol.say("hello")
            carol.expect(lambda line: line.startswith("!! #games is moderated"))
            with server.connect() as alice, server.connect() as bob:
                log_in_registered(alice, "alice", ALICE_PASSWORD)
                alice.say("/join games")  # no key: the founder always gets in
                alice.expect(exactly("-> You joined #games"))
                carol.expect(exactly("-- The server operator made alice an operator in #games"))
                log_in_registered(bob, "bob", BOB_PASSWORD)
                bob.say("/join games")  # a kept operator gets past the key
                bob.expect(exactly("-> You joined #games"))
                bob.say("/look")
                bob.expect(lambda line: line.startswith(
                    "-- You are in #games (modes +klmn (key: sesame, at most 5 members))"))
                bob.expect(exactly("-- 3 users here: carol, @alice, @bob"))
                alice.say("/room info")
                alice.expect(lambda line: line.startswith(
                    "-- #games is registered to alice (since ")
                    and line.endswith("Operators kept: bob."))
        stop(server)
    finally:
        server.stop()
    assert "rooms: 1 registered rooms loaded" in server.log()
    assert "Traceback" not in server.log()
