"""
Persistence as users and operators see it: registered names and their
passwords, room history replayed with its times, topics and offline
messages surviving a restart, what survives SIGTERM and SIGKILL of a
C{twistd} process, clear start-up errors for unusable databases, and
C{--no-database}.

Three kinds of test:

  - the real service (C{makeService}) on 127.0.0.1 over real TCP, stopped
    and started again on the same data directory (conftest's C{chat});
  - C{twistd -n chat} subprocesses, as in C{test_e2e.py} (helpers in
    C{twistd_process.py}), read afterwards with the C{sqlite3} module;
  - a L{ChatFactory} over a real L{ChatStore} with L{StringTransport}
    clients, for the password prompt's states.

Every wait has a timeout; everything listens on 127.0.0.1 only; every file
lives in C{tmp_path}.
"""

import itertools
import os
import re
import signal
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatservice.frontends.line.factory import ChatFactory
from conftest import make_factory
from chatservice.core.limits import Limits
from chatservice.passwords import verify_password
from chatservice.persistence.store import ChatStore
from dbfile import query
from netclient import TIMEOUT, LineClient, connect_client, wait, wait_until
from twistd_process import EXIT_TIMEOUT, log_in, run_chat, start_twistd

SHUTDOWN_LINE = "-- The server is shutting down. Goodbye!"
#: The batch window of the store, and the safety margin on top of it for a
#: loaded machine, in seconds.
BATCH_WINDOW = 0.1
KILL_MARGIN = 0.2

#: A time as history and offline messages show it: 14:05 today, else with the date.
STAMP = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d"
PROMPT_TAIL = "is registered. Password (or /back to choose another name):"
RETRY_LINE = "!! Wrong password. Try again (or /back to choose another name):"

# Distinctive passwords, so that finding one in a file or a log is no accident.
PASSWORD = "Zebra-Quartz-417"
NEW_PASSWORD = "Mango-Violet-528"
WRONG_PASSWORD = "Wrong-Guess-639"


def pause(seconds: float) -> defer.Deferred:
    """Let the reactor run for C{seconds}."""
    from twisted.internet import reactor, task

    return task.deferLater(reactor, seconds, lambda: None)


def exactly(text: str):
    """A predicate for a line equal to C{text}."""
    return lambda line: line == text


def between(lines, first: str, last: str):
    """The lines after the last line equal to C{first} and before the next C{last}."""
    start = max(i for i, line in enumerate(lines) if line == first)
    end = lines.index(last, start)
    return lines[start + 1:end]


def untagged(lines):
    """Each history line without its leading C{[#room time] } tag."""
    return [line.split("] ", 1)[1] for line in lines]


#: The options that make the delay after a wrong password short (it is 2 s).
FAST_RETRY = ("--password-retry-delay", "0.05")


@pytest.fixture
def log_events():
    """Collect every event logged through twisted.logger during the test."""
    from twisted.logger import globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def event_texts(events):
    """Each event as text: its formatted message, traceback and every field."""
    from twisted.logger import eventAsText

    return [eventAsText(event, includeTraceback=True) + " " + repr(event)
            for event in events]


@defer.inlineCallbacks
def log_in_with_password(running, typed: str, password: str, name: str):
    """Connect, answer the name prompt with C{typed}, then C{password}; expect the welcome for C{name}."""
    client = yield running.connect()
    client.say(typed)
    yield client.expect(exactly(f"The name {typed} {PROMPT_TAIL}"))
    client.say(password)
    yield client.expect(exactly(f"-- Hello {name}, welcome to chatservice!"))
    yield client.expect(exactly("-> You joined #lobby"))
    return client


# -- the service restarted over real TCP ----------------------------------------


@pytest_twisted.inlineCallbacks
def test_restart_keeps_accounts_topics_history_and_offline_messages(chat):
    """After a stop and a start on the same data directory: accounts with their passwords, topics, history and offline messages are all there, and a guest cannot take a registered name."""
    first = yield chat("--flood-rate", "0", *FAST_RETRY)
    alice = yield first.connect("Alice")
    alice.say(f"/register {PASSWORD}")
    yield alice.expect(exactly("-- The name Alice is now registered to you. Next time you log "
                               "in with it, you will be asked for this password."))
    alice.say("/topic Persistent topic")
    yield alice.expect(exactly("-- Alice set the topic of #lobby: Persistent topic"))
    alice.say(*[f"line {i}" for i in range(1, 26)])
    alice.say("/join dev", "/topic dev stuff", "dev line",
              "/join games", "/topic temporary", "/topic -", "/leave games", "/leave dev")
    yield alice.sync("a1")
    assert alice.lines[-1] == "PONG a1"
    assert not [line for line in alice.lines if line.startswith("!!")], alice.lines

    bob = yield first.connect("bob")
    yield bob.expect(exactly("-- Topic: Persistent topic"))
    yield bob.expect(exactly("-- History of #lobby, last 20 lines:"))
    alice.say("/quit bye")
    yield alice.wait_closed()
    yield bob.expect(exactly("<- Alice quit (bye)"))
    bob.say("/msg alice are you there?")
    yield bob.expect(exactly("-- alice is offline; they will get your message when they "
                             "next log in."))
    bob.say("/nick ALICE")
    yield bob.expect(exactly("!! The name ALICE is registered to someone else. "
                             "Please choose another name."))
    yield bob.sync("b1")
    yield first.stop()

    second = yield chat("--flood-rate", "0", *FAST_RETRY)
    assert second.factory.chat.is_registered("alice")

    # A guest is asked for the password; three wrong ones disconnect.
    guest = yield second.connect()
    guest.say("alice")
    yield guest.expect(exactly(f"The name alice {PROMPT_TAIL}"))
    for _ in range(2):
        guest.say(WRONG_PASSWORD)
        yield guest.expect(exactly(RETRY_LINE))
    guest.say(WRONG_PASSWORD)
    yield guest.expect(exactly("-- Too many wrong passwords. Goodbye!"))
    yield guest.wait_closed()
    assert not [line for line in guest.lines if "Hello" in line], guest.lines
    assert "alice" not in second.factory.chat.users

    # The right password logs in under the registered spelling.
    alice = yield log_in_with_password(second, "alice", PASSWORD, "Alice")
    yield alice.expect(exactly("-- Topic: Persistent topic"))
    yield alice.expect(exactly("-- End of history of #lobby."))
    replay = between(alice.lines, "-- History of #lobby, last 20 lines:",
                     "-- End of history of #lobby.")
    assert len(replay) == 20, replay
    for number, line in zip(range(6, 26), replay):
        assert re.match(rf"^\[#lobby {STAMP}\] <Alice> line {number}$", line), replay
    header = yield alice.expect(exactly("-- 1 message while you were away:"))
    message = yield alice.expect(re.compile(rf"^\[private {STAMP}\] <bob> are you there\?$"))
    assert alice.lines.index(header) < alice.lines.index(message)

    alice.say("/topic")
    yield alice.expect(exactly("-- The topic of #lobby is: Persistent topic (set by Alice)"))
    alice.say("/history 5")
    yield alice.expect(exactly("-- History of #lobby, last 5 lines:"))
    yield alice.expect(exactly("-- End of history of #lobby."))
    shown = between(alice.lines, "-- History of #lobby, last 5 lines:",
                    "-- End of history of #lobby.")
    assert untagged(shown) == [f"<Alice> line {i}" for i in range(21, 26)]
    alice.say("/history")
    yield alice.expect(exactly("-- History of #lobby, last 26 lines:"))
    yield alice.expect(exactly("-- End of history of #lobby."))
    shown = between(alice.lines, "-- History of #lobby, last 26 lines:",
                    "-- End of history of #lobby.")
    assert re.match(rf"^\[#lobby {STAMP}\] -- Alice set the topic: Persistent topic$",
                    shown[0]), shown

    # The topics of rooms that had closed come back with the rooms.
    alice.say("/join dev")
    yield alice.expect(exactly("-> You joined #dev"))
    yield alice.expect(exactly("-- Topic: dev stuff"))
    yield alice.expect(exactly("-- End of history of #dev."))
    assert untagged(between(
        alice.lines, "-- History of #dev, last 2 lines:", "-- End of history of #dev.")) == [
        "-- Alice set the topic: dev stuff", "<Alice> dev line"]
    alice.say("/join games")
    yield alice.expect(exactly("-> You joined #games"))
    yield alice.expect(exactly("-- End of history of #games."))
    assert untagged(between(
        alice.lines, "-- History of #games, last 2 lines:", "-- End of history of #games.")) == [
        "-- Alice set the topic: temporary", "-- Alice cleared the topic"]
    alice.say("/topic")
    yield alice.expect(exactly("-- #games has no topic. Type /topic TEXT to set one."))
    assert "-- Topic: temporary" not in alice.lines

    alice.say("/msg nobody hello")
    yield alice.expect(exactly("!! No one called 'nobody' is online or registered. "
                               "Type /who to see who is online."))

    # /password OLD NEW: a wrong OLD is refused, then NEW replaces OLD.
    alice.say(f"/password {WRONG_PASSWORD} {NEW_PASSWORD}")
    yield alice.expect(exactly("!! That is not your current password."))
    alice.say(f"/password {PASSWORD} {NEW_PASSWORD}")
    yield alice.expect(exactly("-- Your password has been changed."))
    alice.say("/quit")
    yield alice.wait_closed()

    again = yield log_in_with_password(second, "ALICE", NEW_PASSWORD, "Alice")
    # /history goes through the store after the offline messages: once it
    # answers, any offline message would have been shown.
    again.say("/history 2")
    yield again.expect(exactly("-- History of #lobby, last 2 lines:"))
    assert not [line for line in again.lines if "while you were away" in line], again.lines
    again.say("/quit")
    yield again.wait_closed()

    old = yield second.connect()
    old.say("alice")
    yield old.expect(exactly(f"The name alice {PROMPT_TAIL}"))
    old.say(PASSWORD)
    yield old.expect(exactly(RETRY_LINE))
    old.say("/back")
    yield old.expect(exactly("What's your name?"))
    old.say("carol")
    yield old.expect(exactly("-- Hello carol, welcome to chatservice!"))
    old.say("/nick Alice")
    yield old.expect(exactly("!! The name Alice is registered to someone else. "
                             "Please choose another name."))
    old.say("/register")
    yield old.expect(lambda line: line.startswith("!! Usage: /register PASSWORD."))


@pytest_twisted.inlineCallbacks
def test_stored_hash_is_salted_scrypt_and_passwords_are_never_logged(
        chat, log_events, tmp_path):
    """The accounts table holds salted scrypt hashes, never a password, and no password (right, wrong or replaced) reaches the log or the database file."""
    running = yield chat(*FAST_RETRY)
    alice = yield running.connect("alice")
    bob = yield running.connect("bob")
    alice.say(f"/register {PASSWORD}")
    bob.say(f"/register {NEW_PASSWORD}")
    yield alice.expect("is now registered to you")
    yield bob.expect("is now registered to you")
    alice.say(f"/password {PASSWORD} {NEW_PASSWORD}")
    yield alice.expect(exactly("-- Your password has been changed."))
    alice.say("/quit")
    yield alice.wait_closed()
    guest = yield running.connect()
    guest.say("alice")
    yield guest.expect(PROMPT_TAIL)
    guest.say(WRONG_PASSWORD)
    yield guest.expect(exactly(RETRY_LINE))
    guest.say(PASSWORD)  # the old one
    yield guest.expect(exactly(RETRY_LINE))
    guest.say(NEW_PASSWORD)
    yield guest.expect(exactly("-- Hello alice, welcome to chatservice!"))
    yield running.stop()

    database = tmp_path / "data" / "chat.db"
    rows = dict(query(database, "SELECT key, password_hash FROM accounts"))
    assert sorted(rows) == ["alice", "bob"]
    for stored in rows.values():
        assert stored.startswith("$scrypt$"), stored
        for password in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD):
            assert password not in stored
    # Salted: the same password gives two different hashes.
    assert rows["alice"] != rows["bob"]
    assert verify_password(NEW_PASSWORD, rows["alice"])
    assert not verify_password(PASSWORD, rows["alice"])
    for path in (tmp_path / "data").iterdir():
        data = path.read_bytes()
        for password in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD):
            assert password.encode() not in data, path

    texts = event_texts(log_events)
    assert any("registered alice" in text for text in texts)  # the observer saw the log
    assert any("wrong password for alice" in text for text in texts)
    for password in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD):
        assert not [text for text in texts if password in text]


@pytest_twisted.inlineCallbacks
def test_max_offline_option_sets_the_mailbox_cap(chat):
    """--max-offline is the cap the store checks (default MAX_OFFLINE)."""
    from chatservice.persistence.store import MAX_OFFLINE

    default = yield chat()
    assert default.service.store.max_offline == MAX_OFFLINE
    chosen = yield chat("--max-offline", "5", "--data-dir", str(default.service.store.path) + ".d")
    assert chosen.service.store.max_offline == 5


@pytest_twisted.inlineCallbacks
def test_replay_lines_and_history_limit_options(chat):
    """--replay-lines sets how many lines a newcomer sees (0: none, /history still works), and --history-limit prunes older lines at start-up."""
    first = yield chat("--replay-lines", "3")
    alice = yield first.connect("alice")
    alice.say(*[f"line {i}" for i in range(1, 6)])
    bob = yield first.connect("bob")
    yield bob.expect(exactly("-- History of #lobby, last 3 lines:"))
    yield bob.expect(exactly("-- End of history of #lobby."))
    assert untagged(between(
        bob.lines, "-- History of #lobby, last 3 lines:", "-- End of history of #lobby.")) == [
        "<alice> line 3", "<alice> line 4", "<alice> line 5"]
    yield first.stop()

    second = yield chat("--replay-lines", "0")
    carol = yield second.connect("carol")
    carol.say("/history 4")
    yield carol.expect(exactly("-- History of #lobby, last 4 lines:"))
    assert not [line for line in carol.lines[:carol.lines.index(
        "-- History of #lobby, last 4 lines:")] if "History" in line], carol.lines
    yield second.stop()

    third = yield chat("--history-limit", "2")
    dave = yield third.connect("dave")
    yield dave.expect(exactly("-- History of #lobby, last 2 lines:"))
    dave.say("/history")
    yield dave.expect(exactly("-- End of history of #lobby."))
    yield dave.expect(exactly("-- History of #lobby, last 2 lines:"))
    yield dave.expect(exactly("-- End of history of #lobby."))
    assert untagged(between(
        dave.lines, "-- History of #lobby, last 2 lines:", "-- End of history of #lobby.")) == [
        "<alice> line 4", "<alice> line 5"]


# -- --no-database ---------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_no_database_means_guests_only_and_no_files(chat, tmp_path):
    """With --no-database, /register, /password and /history are refused as unavailable, /msg only reaches online users, and nothing is written to the data directory."""
    running = yield chat("--no-database")
    assert running.factory.chat.store is None
    alice = yield running.connect("alice")
    alice.say(f"/register {PASSWORD}")
    yield alice.expect(lambda line: line.startswith(
        "!! Registering names is not available: this server keeps no accounts or history."))
    alice.say(f"/password {PASSWORD} {NEW_PASSWORD}")
    yield alice.expect(lambda line: line.startswith("!! ") and "not available" in line)
    alice.say("/history")
    yield alice.expect(lambda line: line.startswith(
        "!! Room history is not available: this server keeps no accounts or history."))
    alice.say("/msg nobody hi")
    yield alice.expect(exactly("!! No one called 'nobody' is online. "
                               "Type /who to see who is online."))
    alice.say("said and forgotten")
    bob = yield running.connect("bob")
    yield bob.sync("b1")
    assert not [line for line in bob.lines if "History" in line], bob.lines
    yield running.stop()
    data_dir = tmp_path / "data"
    assert not data_dir.exists() or not list(data_dir.iterdir())


@pytest_twisted.inlineCallbacks
def test_no_database_refusal_does_not_suggest_register(chat):
    """Without a database, the refusal of /register must not tell the user to type /register."""
    running = yield chat("--no-database")
    alice = yield running.connect("alice")
    alice.say(f"/register {PASSWORD}")
    line = yield alice.expect(lambda line: line.startswith("!! "))
    assert "/register" not in line, line


# -- twistd subprocesses ---------------------------------------------------------------


def test_sigterm_keeps_everything_said_before_the_stop(tmp_path):
    """After SIGTERM, the database (created with no set-up in the default data directory) holds every line, the topic, the account and the offline message from just before the stop; the log holds no password."""
    data_dir = tmp_path / "data" / "chatservice"  # $XDG_DATA_HOME/chatservice
    server = start_twistd(tmp_path, "--flood-rate", "0")
    try:
        database = data_dir / "chat.db"
        assert database.exists()
        assert os.stat(str(database)).st_mode & 0o777 == 0o600
        assert os.stat(str(data_dir)).st_mode & 0o777 == 0o700
        with server.connect() as alice, server.connect() as bob:
            log_in(alice, "alice")
            alice.say(f"/register {PASSWORD}")
            alice.expect("-- The name alice is now registered to you.")
            alice.say("/quit")
            alice.expect_eof()
            log_in(bob, "bob")
            said = [f"said {i}" for i in range(300)]
            bob.say(*said)
            bob.say("/topic the last topic", "/msg alice see you later")
            bob.expect(exactly("-- alice is offline; they will get your message when they "
                               "next log in."))
            # The server has read everything: stop at once, inside the
            # batch window of the last lines.
            bob.sync("done")
            server.process.send_signal(signal.SIGTERM)
            bob.expect(exactly(SHUTDOWN_LINE))
            bob.expect_eof()
        try:
            code = server.process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"twistd still running {EXIT_TIMEOUT}s after SIGTERM:\n{server.log()}")
    finally:
        server.stop()
    log = server.log()
    assert code in (0, -signal.SIGTERM), log
    assert "Server Shut Down." in log, log
    assert "Traceback" not in log, log
    for secret in (PASSWORD, "said 1", "see you later"):
        assert secret not in log

    assert query(database, "PRAGMA integrity_check") == [("ok",)]
    rows = query(database, "SELECT kind, sender, text FROM history"
                           " WHERE room_key = 'lobby' ORDER BY id")
    assert rows == [("say", "bob", text) for text in said] + [
        ("topic", "bob", "the last topic")]
    assert query(database, "SELECT topic, set_by FROM topics WHERE room_key = 'lobby'") == [
        ("the last topic", "bob")]
    assert query(database, "SELECT recipient_key, sender, text FROM offline") == [
        ("alice", "bob", "see you later")]
    [(name, stored)] = query(database, "SELECT name, password_hash FROM accounts")
    assert name == "alice"
    assert stored.startswith("$scrypt$") and PASSWORD not in stored


class TimedLineClient(LineClient):
    """A L{LineClient} that also records when (C{time.monotonic()}) each line arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.timed = []

    def lineReceived(self, line: bytes) -> None:
        """Record the arrival time, then the line."""
        self.timed.append((time.monotonic(), line.decode("utf-8", "replace")))
        super().lineReceived(line)


@pytest_twisted.inlineCallbacks
def test_sigkill_during_traffic_loses_at_most_the_batch_window(tmp_path):
    """SIGKILL of twistd while a user talks leaves a consistent database (at --database, not in the data directory) holding, with no gaps, every line another user saw more than the batch window before the kill."""
    from twisted.internet import reactor, task
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    database = tmp_path / "elsewhere" / "kill.db"
    server = start_twistd(tmp_path, "--flood-rate", "0", "--database", str(database))
    clients = []
    loop = None
    try:
        sender = yield connect_client(server.port, "alice")
        clients.append(sender)
        receiver = TimedLineClient()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port, timeout=TIMEOUT)
        yield connectProtocol(endpoint, receiver).addTimeout(TIMEOUT, reactor)
        clients.append(receiver)
        yield receiver.expect("What's your name?")
        receiver.say("bob")
        yield receiver.expect(exactly("-> You joined #lobby"))
        yield sender.expect(exactly("-> bob joined #lobby"))

        counter = itertools.count()
        loop = task.LoopingCall(lambda: sender.say(f"n{next(counter)}"))
        loop.start(0.005)
        yield pause(1.5)
        killed_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)
        loop.stop()
        loop = None
        assert server.process.wait(EXIT_TIMEOUT) == -signal.SIGKILL
        for client in clients:
            yield client.wait_closed()
    finally:
        if loop is not None:
            loop.stop()
        server.stop()
        for client in clients:
            if not client.is_closed:
                client.transport.abortConnection()

    assert not (tmp_path / "data" / "chatservice" / "chat.db").exists()
    # WAL mode: the killed server left its last commits in the -wal file,
    # so opening the database below exercises the recovery.
    assert os.path.getsize(str(database) + "-wal") > 0
    assert query(database, "PRAGMA journal_mode") == [("wal",)]
    assert query(database, "PRAGMA integrity_check") == [("ok",)]
    stored = [int(text[1:]) for (text,) in query(
        database, "SELECT text FROM history WHERE room_key = 'lobby' AND kind = 'say'"
                  " ORDER BY id")]
    assert stored == list(range(len(stored)))  # a prefix of what was said: no gaps
    received = [(at, int(line[len("<alice> n"):])) for at, line in receiver.timed
                if line.startswith("<alice> n")]
    assert len(received) > 50, receiver.lines[-5:]
    old_enough = [number for at, number in received
                  if at < killed_at - BATCH_WINDOW - KILL_MARGIN]
    assert old_enough
    missing = sorted(set(old_enough) - set(stored))
    assert not missing, (
        f"{len(missing)} lines seen more than {BATCH_WINDOW + KILL_MARGIN}s before the "
        f"kill are missing (first {missing[0]}); {len(stored)} stored")


def assert_clear_start_up_error(tmp_path, expected: str, *args) -> None:
    """C{twistd -n chat ARGS} exits non-zero quickly with the one line C{expected} and no traceback."""
    code, out, seconds = run_chat(tmp_path, *args)
    assert code != 0, out
    assert seconds < 15, out
    assert "Traceback" not in out, out
    assert "Server Shut Down." not in out, out  # it never started
    assert out.strip().splitlines() == [expected], out


def test_corrupt_database_is_a_clear_start_up_error(tmp_path):
    """A data directory whose chat.db is garbage stops twistd at start-up with one 'twistd chat:' line naming the file, and the file is left as it was."""
    data_dir = tmp_path / "state"
    data_dir.mkdir()
    database = data_dir / "chat.db"
    garbage = os.urandom(16384)
    database.write_bytes(garbage)
    assert_clear_start_up_error(
        tmp_path,
        f"twistd chat: cannot open the database {database}: it is not a chatservice "
        f"database or is corrupt (file is not a database)",
        "--data-dir", str(data_dir))
    assert database.read_bytes() == garbage


def test_second_server_on_one_database_is_a_clear_start_up_error(tmp_path):
    """A second twistd on the data directory of a running one stops at start-up with one line naming the database and the first server's pid; the first keeps serving."""
    data_dir = tmp_path / "state"
    first = start_twistd(tmp_path, "--data-dir", str(data_dir))
    try:
        database = data_dir / "chat.db"
        assert_clear_start_up_error(
            tmp_path,
            f"twistd chat: the database {database} is in use by another chat server "
            f"(pid {first.process.pid}): stop it, or give this one its own --data-dir "
            f"or --database",
            "--data-dir", str(data_dir))
        client = first.connect()
        try:
            log_in(client, "alice")
        finally:
            client.close()
    finally:
        first.stop()


def test_database_under_a_regular_file_is_a_clear_start_up_error(tmp_path):
    """A data directory (or --database parent) that is a regular file stops twistd at start-up with one 'twistd chat:' line naming it."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    expected = (f"twistd chat: cannot create the directory {blocker} for the database "
                f"{blocker / 'chat.db'}: a file of that name is in the way")
    assert_clear_start_up_error(tmp_path, expected, "--data-dir", str(blocker))
    assert_clear_start_up_error(tmp_path, expected, "--database", str(blocker / "chat.db"))


@pytest_twisted.inlineCallbacks
def test_read_only_database_is_a_clear_start_up_error(tmp_path):
    """A database file that cannot be written (chattr +i, as root) stops twistd at start-up with one 'twistd chat:' line naming the file."""
    from twisted.internet import reactor

    database = tmp_path / "chat.db"
    store = ChatStore(str(database), reactor)
    store.open()
    yield store.close().addTimeout(TIMEOUT, reactor)
    if os.geteuid() == 0:
        try:
            done = subprocess.run(["chattr", "+i", str(database)], capture_output=True)
        except FileNotFoundError:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        if done.returncode:
            pytest.skip(f"chattr +i failed here: {done.stderr.decode().strip()}")

        def undo():
            subprocess.run(["chattr", "-i", str(database)], check=True)
    else:
        os.chmod(str(database), 0o444)

        def undo():
            os.chmod(str(database), 0o600)
    try:
        try:
            open(str(database), "r+b").close()
        except OSError:
            pass
        else:
            pytest.skip("cannot make the database read-only here")
        assert_clear_start_up_error(
            tmp_path,
            f"twistd chat: cannot open the database {database}: it is read-only "
            f"(attempt to write a readonly database)",
            "--database", str(database))
    finally:
        undo()


# -- the password prompt over a real store (StringTransport clients) ---------------


class Client:
    """One StringTransport connection to the factory (see conftest's FakeClient)."""

    _next_port = 41000

    def __init__(self, factory: ChatFactory) -> None:
        Client._next_port += 1
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", Client._next_port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        self.lost = False

    def send(self, *lines: str) -> None:
        """Type each line, ending it with LF."""
        for line in lines:
            self.protocol.dataReceived(line.encode("utf-8") + b"\n")

    def feed(self, data: bytes) -> None:
        """Deliver C{data} as one read."""
        self.protocol.dataReceived(data)

    def lines(self):
        """Every line the server wrote so far."""
        return self.transport.value().decode("utf-8").split("\r\n")[:-1]

    @property
    def state(self) -> str:
        return self.protocol.state

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting or self.transport.disconnected

    def lose(self) -> None:
        """The connection drops (no /quit)."""
        if not self.lost:
            self.lost = True
            self.transport.loseConnection()
            self.protocol.connectionLost(None)


@pytest.fixture
def stored(tmp_path):
    """
    A L{ChatFactory} over a real L{ChatStore} on the real reactor, hashing
    inline (no threads); returns (factory, connect).  Every connection is
    closed and the store closed afterwards.
    """
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    loaded = store.open()
    factory = make_factory(clock=reactor, limits=Limits(login_timeout=0), store=store,
                          stored_topics=loaded.topics,
                          run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
    clients = []

    def connect() -> Client:
        client = Client(factory)
        clients.append(client)
        return client

    yield factory, connect
    for client in clients:
        client.lose()
    pytest_twisted.blockon(store.close().addTimeout(TIMEOUT, reactor))


@pytest_twisted.inlineCallbacks
def test_back_at_the_password_prompt_returns_to_the_name_prompt(stored):
    """/back at the password prompt asks for a name again, and a guest name then works."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    client = connect()
    client.send("alice")
    assert client.lines()[-1] == f"The name alice {PROMPT_TAIL}"
    assert client.state == "password"
    client.send("/back")
    assert client.lines()[-1] == "What's your name?"
    assert client.state == "naming"
    client.send("carol")
    assert client.state == "chatting"
    assert "-- Hello carol, welcome to chatservice!" in client.lines()
    assert "alice" not in factory.chat.users


@pytest_twisted.inlineCallbacks
def test_telnet_client_is_asked_not_to_echo_the_password(stored):
    """A telnet client gets IAC WILL ECHO with the password prompt and IAC WONT ECHO once logged in; a netcat client gets neither."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    will_echo, wont_echo = b"\xff\xfb\x01", b"\xff\xfc\x01"

    telnet = connect()
    telnet.feed(b"\xff\xfd\x03alice\r\n")  # IAC DO SGA, as telnet clients send
    assert telnet.state == "password"
    prompt_at = telnet.transport.value().index(b"Password")
    assert telnet.transport.value().count(will_echo) == 1
    assert telnet.transport.value().index(will_echo) < prompt_at
    telnet.feed(b"\xff\xfd\x01" + PASSWORD.encode() + b"\r\n")  # IAC DO ECHO
    yield wait_until(lambda: telnet.state == "chatting")
    assert telnet.transport.value().count(wont_echo) == 1

    yield wait(factory.chat.accounts.register("bob", "Bob", PASSWORD))
    nc = connect()
    nc.send("bob")
    assert nc.state == "password"
    nc.send("/back")
    assert b"\xff" not in nc.transport.value()


@pytest_twisted.inlineCallbacks
def test_replay_comes_right_after_the_join_once_the_room_was_read(stored):
    """Once a room's history has been read, a newcomer gets it in the same breath as the join: nothing said meanwhile can come before it."""
    factory, connect = stored
    alice = connect()
    alice.send("alice")
    yield wait(factory.chat.store.flush())  # the lobby's (empty) history was read
    alice.send("first", "second")
    bob = connect()
    bob.send("bob")
    lines = bob.lines()
    start = lines.index("-> You joined #lobby")
    assert lines[start + 2] == "-- History of #lobby, last 2 lines:", lines
    assert untagged(lines[start + 3:start + 5]) == ["<alice> first", "<alice> second"]
    assert lines[start + 5] == "-- End of history of #lobby."


@pytest_twisted.inlineCallbacks
def test_default_room_history_is_read_at_start_not_at_the_first_login(tmp_path):
    """The factory reads the default room's last lines when it starts, so even the first login after a restart gets its replay at once."""
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    store.open()
    try:
        store.record_line("lobby", 1000.0, "say", "alice", "before the restart")
        yield wait(store.flush())
        factory = make_factory(clock=reactor, limits=Limits(login_timeout=0), store=store)
        yield wait(store.flush())  # the start-up read has answered
        client = Client(factory)
        client.send("bob")
        lines = client.lines()
        assert "-- History of #lobby, last 1 line:" in lines, lines
        assert untagged([l for l in lines if "before the restart" in l]) == [
            "<alice> before the restart"]
        client.lose()
    finally:
        yield wait(store.close())


@pytest_twisted.inlineCallbacks
def test_quit_at_the_password_prompt_says_goodbye_and_closes(stored):
    """/quit at the password prompt closes the connection without logging anyone in."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    client = connect()
    client.send("alice", "/quit")
    assert client.lines()[-1] == "-- Goodbye!"
    assert client.closed
    assert client.state == "closing"
    assert not factory.chat.users


@pytest_twisted.inlineCallbacks
def test_lines_typed_while_the_password_is_checked_are_ignored(stored):
    """While a password is checked (and during the delay after a wrong one), typed lines are neither said, run, nor taken as the next password."""
    factory, connect = stored
    factory.chat.limits.password_retry_delay = 0.3
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    bob = connect()
    bob.send("bob")
    client = connect()
    client.send("alice")

    started = time.monotonic()
    client.feed(f"{WRONG_PASSWORD}\n{PASSWORD}\nhello everyone\n/quit\n".encode())
    assert client.state == "checking"
    yield wait_until(lambda: client.state != "checking")
    assert time.monotonic() - started >= 0.29  # the delay between tries
    assert client.state == "password"
    assert client.lines()[-1] == RETRY_LINE
    assert not client.closed

    client.feed(f"{PASSWORD}\nhello everyone\n/who\n/quit\n".encode())
    assert client.state == "checking"
    yield wait_until(lambda: client.state != "checking")
    assert client.state == "chatting"
    assert "-- Hello Alice, welcome to chatservice!" in client.lines()
    yield wait(factory.chat.store.flush())  # the offline messages and history have answered
    assert not client.closed
    assert not [line for line in client.lines() if "online:" in line or "Goodbye" in line]
    assert not [line for line in bob.lines() if "hello everyone" in line], bob.lines()
    assert bob.lines()[-1] == "-> Alice joined #lobby"


@pytest_twisted.inlineCallbacks
def test_disconnecting_while_the_password_is_checked_leaves_no_ghost(stored):
    """A connection that drops while its password is checked, or during the delay after a wrong one, logs nobody in and leaves nothing behind."""
    factory, connect = stored
    factory.chat.limits.password_retry_delay = 0.2
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    lobby = factory.chat.default_room

    client = connect()
    client.send("alice", PASSWORD)
    assert client.state == "checking"
    seen = client.lines()
    client.lose()
    yield wait(factory.chat.store.flush())  # the check has answered by now
    yield pause(0.05)
    assert client.lines() == seen
    assert not factory.chat.users
    assert not lobby.members
    assert client.protocol not in factory.chat.clients

    wrong = connect()
    wrong.send("alice", WRONG_PASSWORD)
    yield wait(factory.chat.store.flush())
    assert wrong.state == "checking"  # waiting out the delay
    seen = wrong.lines()
    wrong.lose()
    yield pause(0.3)
    assert wrong.lines() == seen
    assert wrong.protocol._retry is None

    again = connect()
    again.send("alice", PASSWORD)
    yield wait_until(lambda: again.state != "checking")
    assert again.state == "chatting", again.lines()
    assert list(factory.chat.users) == ["alice"]
    assert len(factory.chat.clients) == 1


@pytest_twisted.inlineCallbacks
def test_two_logins_with_the_right_password_at_once(stored):
    """Two connections giving the right password for the same name at once: one logs in, the other is told the name is taken and asked again."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    first, second = connect(), connect()
    first.send("alice", PASSWORD)
    second.send("alice", PASSWORD)
    yield wait_until(lambda: "checking" not in (first.state, second.state))
    assert first.state == "chatting"
    assert second.state == "naming"
    assert second.lines()[-2:] == [
        "!! The name 'Alice' is taken. Please choose another name.", "What's your name?"]
    assert list(factory.chat.users) == ["alice"]


@pytest_twisted.inlineCallbacks
def test_a_registered_name_is_registered_in_every_spelling(stored):
    """Case and width variants of a registered name ask for its password, and the user gets the registered spelling."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    client = connect()
    client.send("\uff21\uff2c\uff29\uff23\uff25")  # fullwidth ALICE
    assert client.lines()[-1] == f"The name ALICE {PROMPT_TAIL}"
    client.send(PASSWORD)
    yield wait_until(lambda: client.state != "checking")
    assert client.protocol.user.name == "Alice"
    guest = connect()
    guest.send("carol", "/nick ALICE")
    assert guest.lines()[-1] == ("!! The name 'ALICE' is taken. Please choose another name.")
    client.send("/quit")
    guest.send("/nick ALICE")
    assert guest.lines()[-1] == ("!! The name ALICE is registered to someone else. "
                                 "Please choose another name.")


@pytest_twisted.inlineCallbacks
def test_offline_messages_wait_for_the_registered_user_and_come_once(stored):
    """Private messages to a registered user who is offline are shown at their next login, counted and with their times, and only once."""
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    bob = connect()
    bob.send("bob", "/msg alice first one", "/msg ALICE second one")
    assert not [line for line in bob.lines() if "offline" in line]  # not before it is kept
    yield wait_until(lambda: bob.lines()[-1] == (
        "-- ALICE is offline; they will get your message when they next log in."))
    assert query(factory.chat.store.path, "SELECT text FROM offline ORDER BY id") == [
        ("first one",), ("second one",)]  # committed by the time the sender was told
    bob.send("/msg nobody hello")
    assert bob.lines()[-1] == ("!! No one called 'nobody' is online or registered. "
                               "Type /who to see who is online.")
    client = connect()
    client.send("alice", PASSWORD)
    yield wait_until(lambda: any("while you were away" in line for line in client.lines()))
    lines = client.lines()
    start = lines.index("-- 2 messages while you were away:")
    assert re.match(rf"^\[private {STAMP}\] <bob> first one$", lines[start + 1]), lines
    assert re.match(rf"^\[private {STAMP}\] <bob> second one$", lines[start + 2]), lines
    client.send("/quit")

    again = connect()
    again.send("alice", PASSWORD)
    yield wait_until(lambda: again.state == "chatting")
    yield wait(factory.chat.store.flush())
    assert not [line for line in again.lines() if "while you were away" in line]


@pytest_twisted.inlineCallbacks
def test_a_full_mailbox_refuses_the_message_and_says_so(stored):
    """Past the cap of waiting offline messages, the sender is told the message was not kept; after the recipient logs in, messages are kept again."""
    factory, connect = stored
    factory.chat.store.max_offline = 2
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    bob = connect()
    bob.send("bob", "/msg alice one", "/msg alice two")
    yield wait_until(lambda: len([line for line in bob.lines() if line.startswith(
        "-- alice is offline; they will get your message")]) == 2)
    bob.send("/msg alice three")
    assert bob.lines()[-1] == (
        "!! alice is offline and your message was not kept: 2 messages already wait "
        "for them. Try again after they next log in.")
    client = connect()
    client.send("alice", PASSWORD)
    yield wait_until(lambda: any("while you were away" in line for line in client.lines()))
    assert "-- 2 messages while you were away:" in client.lines()
    assert not [line for line in client.lines() if "three" in line]
    client.send("/quit")
    bob.send("/msg alice four")
    yield wait_until(lambda: bob.lines()[-1].startswith(
        "-- alice is offline; they will get your message"))


@pytest_twisted.inlineCallbacks
def test_back_does_not_reset_the_count_of_wrong_passwords(stored):
    """Going /back and giving the name again does not buy more tries: the third wrong password on one connection disconnects."""
    factory, connect = stored
    factory.chat.limits.password_retry_delay = 0.05
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
    client = connect()
    client.send("alice")
    for _ in range(2):
        client.send(WRONG_PASSWORD)
        yield wait_until(lambda: client.state == "password")
        assert client.lines()[-1] == RETRY_LINE
    client.send("/back", "alice", WRONG_PASSWORD)
    yield wait_until(lambda: client.closed)
    assert client.lines()[-1] == "-- Too many wrong passwords. Goodbye!"
    assert not factory.chat.users


@pytest_twisted.inlineCallbacks
def test_login_timeout_applies_at_the_password_prompt(tmp_path):
    """A connection that types a registered name and then nothing is closed by the login timeout like any newcomer."""
    from twisted.internet import reactor, task

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    loaded = store.open()
    clock = task.Clock()
    factory = make_factory(clock=clock, limits=Limits(login_timeout=60), store=store,
                          stored_topics=loaded.topics,
                          run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
    client = Client(factory)
    try:
        yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))
        client.send("alice")
        assert client.state == "password"
        clock.advance(61)
        assert client.lines()[-1] == "-- You took too long to choose a name. Goodbye!"
        assert client.closed
    finally:
        client.lose()
        yield wait(store.close())


@pytest_twisted.inlineCallbacks
def test_history_of_one_line_says_line(stored):
    """/history 1 announces 'last 1 line', not 'last 1 lines'."""
    factory, connect = stored
    client = connect()
    client.send("alice", "hello", "/history 1")
    yield wait_until(lambda: "-- End of history of #lobby." in client.lines())
    assert "-- History of #lobby, last 1 line:" in client.lines(), client.lines()


@pytest_twisted.inlineCallbacks
def test_an_offline_message_the_database_cannot_store_is_not_promised(stored):
    """
    When the database cannot write (here its connection is made read-only),
    the sender of an offline message is told it was not kept instead of
    being promised its delivery, the chat goes on, and both the lost line
    and the lost message are counted in writes_dropped.
    """
    factory, connect = stored
    yield wait(factory.chat.accounts.register("alice", "Alice", PASSWORD))

    def read_only(conn):
        conn.execute("PRAGMA query_only = ON")

    yield wait(factory.chat.store._submit(read_only, (), "make the connection read-only"))
    bob, carol = connect(), connect()
    bob.send("bob")
    carol.send("carol")
    dropped = factory.chat.store.writes_dropped
    bob.send("hello carol", "/msg alice are you there?")
    assert "<bob> hello carol" in carol.lines()  # the chat goes on
    yield wait_until(lambda: "alice" in bob.lines()[-1])
    assert bob.lines()[-1] == (
        "!! alice is offline and your message was not kept: the server could not store "
        "it just now. Try /msg again later.")
    assert not [line for line in bob.lines() if "they will get your message" in line]
    assert factory.chat.store.writes_dropped - dropped == 2
    assert factory.chat.store.offline_waiting == {}
