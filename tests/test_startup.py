"""
Starting and stopping in this process: C{makeService} only checks (no
thread, no lock, no open database: C{twistd} may fork after it), and
C{startService} starts; a database taken in between is one critical line;
C{SIGHUP} reloads the message of the day; a second stop signal hurries the
shutdown.  The signal tests use stand-ins for the L{signal} module and the
reactor, so no real signal is sent to the test process.
"""

import os
import signal
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher

from chatservice.core.chat import Chat
from chatservice.frontends.line.factory import ChatFactory
from chatservice.persistence import remember
from chatservice.persistence import disk
from chatservice.persistence.records import StoreError
from chatservice.persistence.schema import SCHEMA_VERSION
from chatservice.reload import MAX_MOTD_BYTES
from chatservice.service import ChatService, StartupFailure
from chatservice.tap import Options, makeService
from conftest import FakeClient
from dbfile import query
from netclient import wait


@pytest.fixture
def log_events():
    """Collect every event logged through twisted.logger during the test."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def logged(events, level=None):
    """The formatted messages of C{events} (at C{level}, a name such as 'critical')."""
    return [formatEvent(event) for event in events
            if level is None or event["log_level"].name == level]


def chat_options(tmp_path, *args) -> Options:
    """Parsed C{twistd chat} options on an ephemeral loopback port, state in C{tmp_path}."""
    options = Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1",
                          "--data-dir", str(tmp_path / "data"), *args])
    return options


def open_files(path) -> list:
    """The files of this process whose names start with C{path} (the database, -wal, -shm)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def lock_is_free(path) -> bool:
    """Whether another server could lock the database C{path} now (the lock is then released)."""
    try:
        held = disk.lock_database(str(path))
    except StoreError:
        return False
    if held is not None:
        held.close()
    return True


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


# -- make, then start ---------------------------------------------------------------


@needs_proc
@pytest_twisted.inlineCallbacks
def test_make_service_checks_the_database_but_starts_and_holds_nothing(tmp_path):
    """makeService creates and upgrades the database but leaves no thread, no lock and no open file behind (twistd forks after it); startService starts the writer and takes the lock under this pid; stopService lets both go."""
    from twisted.internet import reactor

    database = tmp_path / "data" / "chat.db"
    before = set(threading.enumerate())
    top = makeService(chat_options(tmp_path), reactor)
    assert [t.name for t in set(threading.enumerate()) - before] == []
    assert query(database, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert open_files(database) == []
    assert lock_is_free(database)

    top.startService()
    try:
        started = [t.name for t in set(threading.enumerate()) - before]
        assert "chatservice-store" in started, started
        assert not lock_is_free(database)
        assert (tmp_path / "data" / "chat.db.lock").read_text() == str(os.getpid())
        assert open_files(database)
        yield wait(top.store.flush())
    finally:
        yield wait(defer.maybeDeferred(top.stopService))
    assert lock_is_free(database)
    assert "chatservice-store" not in [t.name for t in threading.enumerate()]


class RecordingStore:
    """Just enough of a L{ChatStore} for a chat: it records the reads asked of it."""

    history_limit = 0

    def __init__(self) -> None:
        self.reads = []
        self.registered = set()

    def history(self, room_key, limit=20, before_id=None):
        """Record the read; it never answers."""
        self.reads.append((room_key, limit))
        return defer.Deferred()

    def is_registered(self, key):
        """Nobody is registered."""
        return False


def test_the_chat_reads_the_default_room_when_started_not_when_made():
    """Chat() and ChatFactory() ask the store for nothing (it may not be started: twistd forks after makeService); Chat.start() reads the default room's recent lines."""
    store = RecordingStore()
    clock = task.Clock()
    accounts, recent = remember(store, clock, 7)
    chat = Chat(clock=clock, store=store, accounts=accounts, recent=recent, replay_lines=7)
    ChatFactory(chat)
    assert store.reads == []
    chat.start()
    assert store.reads == [("lobby", 7)]


def test_a_database_taken_between_the_check_and_the_start_is_one_critical_line(
        tmp_path, log_events, capfd):
    """If another server locks the database after makeService checked it, startService logs one critical line, writes it to stderr, and raises StartupFailure (exit status 1, no traceback); nothing is started."""
    from twisted.internet import reactor

    top = makeService(chat_options(tmp_path), reactor)
    database = tmp_path / "data" / "chat.db"
    other = disk.lock_database(str(database))  # as if another server
    try:
        with pytest.raises(StartupFailure) as failure:
            top.startService()
    finally:
        other.close()
    reason = (f"the database {database} is in use by another chat server (pid {os.getpid()}): "
              f"stop it, or give this one its own --data-dir or --database")
    assert str(failure.value) == reason
    assert failure.value.code == 1
    assert isinstance(failure.value, SystemExit) and isinstance(failure.value, Exception)
    assert logged(log_events, "critical") == [f"the server cannot start: {reason}"]
    # (Until twistd begins logging, Twisted also copies critical events to stderr.)
    assert capfd.readouterr().err.splitlines().count(f"twistd chat: {reason}") == 1
    assert top.store._thread is None
    assert lock_is_free(database)


# -- signals ---------------------------------------------------------------------------


class FakeSignals:
    """A stand-in for the L{signal} module: handlers by number, nothing installed for real."""

    SIGHUP, SIGINT, SIGTERM = signal.SIGHUP, signal.SIGINT, signal.SIGTERM

    def __init__(self, handlers) -> None:
        self.handlers = dict(handlers)

    def signal(self, number, handler):
        """Install C{handler}; return the previous one."""
        previous = self.handlers.get(number, signal.SIG_DFL)
        self.handlers[number] = handler
        return previous

    def getsignal(self, number):
        """The handler of C{number}."""
        return self.handlers.get(number, signal.SIG_DFL)


class FakeReactor:
    """Queues what signal handlers pass to the reactor thread, and keeps the shutdown triggers."""

    def __init__(self) -> None:
        self.queued = []
        self.triggers = {}

    def callFromThread(self, function, *args):
        """Queue C{function(*args)} until L{run_queued}."""
        self.queued.append((function, args))

    def run_queued(self) -> None:
        """Run what the signal handlers queued, as the reactor thread would."""
        queued, self.queued = self.queued, []
        for function, args in queued:
            function(*args)

    def addSystemEventTrigger(self, phase, event, function, *args):
        """Keep C{function} for L{shut_down}; return its id."""
        assert (phase, event) == ("before", "shutdown")
        key = object()
        self.triggers[key] = (function, args)
        return key

    def removeSystemEventTrigger(self, key):
        """Forget a trigger."""
        del self.triggers[key]

    def shut_down(self) -> None:
        """Run the 'before shutdown' triggers, as reactor.stop() leads to."""
        triggers, self.triggers = self.triggers, {}
        for function, args in triggers.values():
            function(*args)


class ReactorHandlers:
    """The reactor's own SIGINT and SIGTERM handlers (they stop it): records their calls."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, number, frame):
        self.calls.append(number)


@pytest.fixture
def signalled(tmp_path):
    """
    A started L{ChatService} (no database) over stand-in signals and a
    stand-in reactor, with its message of the day from C{tmp_path/motd}:
    returns (service, factory, signals, reactor, the reactor's handlers),
    where the factory is the line protocol's over the service's chat.
    """
    motd = tmp_path / "motd"
    motd.write_text("old news")
    clock = task.Clock()
    factory = ChatFactory(Chat(clock=clock, motd="old news"))
    stops = ReactorHandlers()
    signals = FakeSignals({signal.SIGINT: stops, signal.SIGTERM: stops,
                           signal.SIGHUP: signal.SIG_DFL})
    reactor = FakeReactor()
    service = ChatService(factory.chat, reactor, motd_path=str(motd), signals=signals)
    service.startService()
    yield service, factory, signals, reactor, stops
    if service.running:
        service.stopService()
        clock.advance(factory.chat.limits.shutdown_grace)


def test_signal_handlers_are_installed_at_start_and_restored_at_stop(tmp_path):
    """No handler is installed before startService; SIGHUP gets the service's from it, and SIGINT and SIGTERM while it stops; once stopped (the reactor still running, as in tests), every signal has its previous handler back."""
    clock = task.Clock()
    factory = ChatFactory(Chat(clock=clock))
    stops = ReactorHandlers()
    original = {signal.SIGINT: stops, signal.SIGTERM: stops, signal.SIGHUP: signal.SIG_DFL}
    signals = FakeSignals(original)
    reactor = FakeReactor()
    service = ChatService(factory.chat, reactor, signals=signals)
    assert signals.handlers == original
    service.startService()
    assert signals.handlers[signal.SIGHUP] == service._hangup
    assert signals.handlers[signal.SIGTERM] is stops and signals.handlers[signal.SIGINT] is stops
    client = FakeClient(factory)
    done = service.stopService()
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        assert getattr(signals.handlers[number], "__self__", None) is service, number
    client.lose()
    assert done.called
    assert signals.handlers == original
    assert reactor.triggers == {}


def test_when_the_reactor_stops_the_handlers_stay_until_the_process_exits():
    """When the reactor's shutdown stops the service, the service's handlers stay once it has stopped: the reactor's own would raise ReactorNotRunning, and SIGHUP's default would kill the exiting process."""
    chat = Chat(clock=task.Clock())
    stops = ReactorHandlers()
    signals = FakeSignals({signal.SIGINT: stops, signal.SIGTERM: stops,
                           signal.SIGHUP: signal.SIG_DFL})
    reactor = FakeReactor()
    service = ChatService(chat, reactor, signals=signals)
    service.startService()
    reactor.shut_down()
    assert service.stopService().called
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        assert getattr(signals.handlers[number], "__self__", None) is service, number


def test_sighup_rereads_the_motd_file_on_the_reactor_thread(signalled, tmp_path, log_events):
    """The SIGHUP handler only queues the reload for the reactor thread; there it reads the file again (the next login sees it), and a file that cannot be read, or is too large, leaves the old message with the reason logged."""
    service, factory, signals, reactor, _ = signalled
    motd = tmp_path / "motd"
    motd.write_text("fresh news")
    signals.handlers[signal.SIGHUP](signal.SIGHUP, None)
    assert factory.chat.motd == "old news"  # nothing done inside the signal handler
    reactor.run_queued()
    assert factory.chat.motd == "fresh news"
    assert logged(log_events, "info") == [
        "announcement to everyone: The message of the day has changed: type /motd to read it.",
        f"SIGHUP: message of the day changed ({motd})"]
    client = FakeClient(factory)
    client.send("alice")
    assert "-- fresh news" in client.lines()
    client.send("/motd")
    assert client.lines()[-1] == "-- fresh news"

    motd.write_bytes(b"x" * (MAX_MOTD_BYTES + 1))
    signals.handlers[signal.SIGHUP](signal.SIGHUP, None)
    reactor.run_queued()
    motd.unlink()
    signals.handlers[signal.SIGHUP](signal.SIGHUP, None)
    reactor.run_queued()
    assert factory.chat.motd == "fresh news"
    assert logged(log_events, "error") == [
        f"SIGHUP: kept the old message of the day: {str(motd)!r} is larger than "
        f"{MAX_MOTD_BYTES} bytes",
        f"SIGHUP: kept the old message of the day: cannot read {str(motd)!r}: "
        "No such file or directory"]
    assert not client.closed


def test_sighup_without_a_motd_file_reloads_nothing(log_events):
    """With --motd given as text (or not at all), SIGHUP logs that there is nothing to reload."""
    chat = Chat(clock=task.Clock(), motd="text")
    signals = FakeSignals({signal.SIGHUP: signal.SIG_DFL})
    reactor = FakeReactor()
    ChatService(chat, reactor, signals=signals).startService()
    signals.handlers[signal.SIGHUP](signal.SIGHUP, None)
    reactor.run_queued()
    assert chat.motd == "text"
    assert logged(log_events) == [
        "SIGHUP: nothing to reload (no --motd file, no --config, no admin "
        "credential files); other options take effect at a restart"]


def test_the_first_stop_signal_goes_to_the_reactor_and_the_next_ones_hurry(
        signalled, log_events):
    """The first SIGTERM is the reactor's (it stops it); a second one while users are being let go logs one 'already shutting down' line and aborts the connections still open; a third, once the service has stopped and the process is on its way out, says only that."""
    service, factory, signals, reactor, stops = signalled
    stuck = FakeClient(factory)
    stuck.send("stuck")
    signals.handlers[signal.SIGTERM](signal.SIGTERM, None)
    assert stops.calls == [signal.SIGTERM]
    reactor.shut_down()  # what the reactor's stop leads to, then:
    done = service.stopService()
    assert not stuck.transport.disconnected  # told, and given the grace period

    signals.handlers[signal.SIGINT](signal.SIGINT, None)
    assert stops.calls == [signal.SIGTERM]  # not the reactor's again: no ReactorNotRunning
    reactor.run_queued()
    assert stuck.transport.disconnected  # aborted
    stuck.protocol.connectionLost(None)
    assert done.called
    signals.handlers[signal.SIGTERM](signal.SIGTERM, None)
    reactor.run_queued()
    assert stops.calls == [signal.SIGTERM]
    assert logged(log_events, "warn") == [
        "SIGINT received: already shutting down; aborting the 1 connection(s) still open",
        "SIGTERM received: already shutting down; no connection is left open"]


def test_a_second_stop_signal_before_the_service_stops_skips_the_grace_period(signalled):
    """A second stop signal after the reactor began its shutdown but before this service's turn: the users are still told, but their connections get no grace period."""
    service, factory, signals, reactor, stops = signalled
    clock = factory.chat.clock
    client = FakeClient(factory)
    client.send("alice")
    signals.handlers[signal.SIGTERM](signal.SIGTERM, None)
    reactor.shut_down()
    signals.handlers[signal.SIGTERM](signal.SIGTERM, None)
    reactor.run_queued()
    assert stops.calls == [signal.SIGTERM]
    service.stopService()
    assert client.lines()[-1] == "-- The server is shutting down. Goodbye!"
    clock.advance(0)
    assert client.transport.disconnected
