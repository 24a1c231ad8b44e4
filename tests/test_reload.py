"""
The settings file (C{--config}) and what C{SIGHUP} puts in force from it:
the parsing and its errors, the command line winning over the file, live
limits, settings that need a restart, and the admin credential files.
"""

import pytest
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage

from chatservice.config import MAX_CONFIG_BYTES, ConfigError, parse_config, read_config
from chatservice.core.chat import Chat
from chatservice.core.limits import MAX_OUTPUT
from chatservice.passwords import hash_password
from chatservice.persistence.accounts import CheckQueue
from chatservice.reload import Reloader
from chatservice.service import ChatService
from chatservice.tap import Options, makeService
from conftest import FakeClient

SETTABLE = {"flood-rate": float, "server-name": None}
REFUSED = {"port": "give --port on the command line"}


@pytest.fixture
def log_events():
    """Collect every event logged through twisted.logger during the test."""
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def messages(events, level=None):
    """The formatted messages of C{events} (at C{level}, a name such as 'warn')."""
    return [formatEvent(event) for event in events
            if level is None or event["log_level"].name == level]


# -- the file -------------------------------------------------------------------


def test_a_settings_file_holds_names_and_values_with_comments_and_blank_lines():
    """Names are long option names (dashes before them are allowed), values are converted by the option's converter, and comments and blank lines are skipped."""
    text = "# limits\n\n  flood-rate = 2.5  \n--server-name=My chat = fun\n"
    assert parse_config(text, "f", SETTABLE, REFUSED) == {
        "flood-rate": 2.5, "server-name": "My chat = fun"}


@pytest.mark.parametrize("text, problem", [
    ("flood-rate 2", "f, line 1: expected NAME = VALUE (for example 'flood-rate = 2'), "
                     "not 'flood-rate 2'"),
    ("= 2", "f, line 1: expected NAME = VALUE"),
    ("\nflod-rate = 2", "f, line 2: there is no option 'flod-rate'. Did you mean flood-rate?"),
    ("flood-rate = fast", "f, line 1: flood-rate: could not convert string to float: 'fast'"),
    ("port = tcp:1", "f, line 1: port cannot be set here: give --port on the command line"),
    ("flood-rate = 1\nflood-rate = 2", "f, line 2: flood-rate is set twice in the file"),
])
def test_a_bad_line_is_named_with_what_to_write_instead(text, problem):
    """Each mistake names the file, the line and what would work."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f", SETTABLE, REFUSED)
    assert str(caught.value).startswith(problem)


def test_a_file_that_is_missing_too_large_or_not_utf8_is_refused(tmp_path):
    """The file is read with a bound, as UTF-8, and an unreadable one says why."""
    path = tmp_path / "chat.conf"
    with pytest.raises(ConfigError, match="cannot read .*No such file"):
        read_config(str(path), SETTABLE, REFUSED)
    path.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="is larger than"):
        read_config(str(path), SETTABLE, REFUSED)
    path.write_bytes(b"server-name = caf\xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        read_config(str(path), SETTABLE, REFUSED)


# -- the options ----------------------------------------------------------------------


def parse(*args) -> Options:
    """Parsed C{twistd chat} options."""
    options = Options()
    options.parseOptions(["--no-database", *args])
    return options


def test_the_file_sets_options_and_the_command_line_wins(tmp_path):
    """Values from --config apply where the command line gave none; a limit given on the command line keeps its value whatever the file says."""
    config = tmp_path / "chat.conf"
    config.write_text("flood-rate = 3\nmax-output = 1000\nserver-name = Filed\n")
    options = parse("--config", str(config), "--max-output", "5000")
    assert (options["flood-rate"], options["max-output"], options["server-name"]) == (
        3.0, 5000, "Filed")
    source = options.config_source
    assert source.path == str(config) and source.command_line == {"max-output": 5000}


@pytest.mark.parametrize("line, problem", [
    ("no-database = 1", "no-database cannot be set here: it is a flag: give --no-database "
                        "on the command line"),
    ("port = tcp:1", "port cannot be set here: give --port on the command line"),
    ("irc-port = tcp:1", "irc-port cannot be set here: give --irc-port on the command line"),
    ("config = other", "config cannot be set here: a settings file cannot name another"),
    ("max-output = -1", "max-output: '-1' must be at least 0"),
])
def test_options_the_file_may_not_set_are_a_usage_error(tmp_path, line, problem):
    """Flags, repeatable options and a nested --config stay on the command line; values are checked as on the command line."""
    config = tmp_path / "chat.conf"
    config.write_text(line + "\n")
    with pytest.raises(usage.UsageError) as caught:
        parse("--config", str(config))
    assert str(caught.value) == f"--config: {config}, line 1: {problem}"


# -- reloading -------------------------------------------------------------------------


def served(tmp_path, text, *args):
    """(the chat service, its line factory) made from --config holding C{text}."""
    config = tmp_path / "chat.conf"
    config.write_text(text)
    top = makeService(parse("--config", str(config), *args), task.Clock())
    service = next(s for s in top if isinstance(s, ChatService))
    return service, top.factory, config


def test_sighup_puts_changed_limits_in_force_and_logs_them(tmp_path, log_events):
    """A limit changed in the file is in force after the reload (here: a shorter topic limit refuses the next /topic); a line taken out of the file goes back to its default; the log says what changed."""
    service, factory, config = served(tmp_path, "max-topic-length = 100\nmax-output = 4096\n")
    alice = FakeClient(factory)
    alice.send("alice", "/join games")
    config.write_text("max-topic-length = 10\n")
    service.reload()
    assert factory.chat.limits.max_topic_length == 10
    assert factory.chat.limits.max_output == MAX_OUTPUT  # back to the default
    alice.send("/topic a topic that is long")
    assert "10" in alice.lines()[-1]
    assert not alice.closed
    assert messages(log_events, "info")[-1] == (
        f"SIGHUP: limits changed from {config}: max-output 4096 -> {MAX_OUTPUT}, "
        "max-topic-length 100 -> 10")
    service.reload()
    assert messages(log_events, "info")[-1] == f"SIGHUP: no limit changed in {config}"


def test_a_setting_that_needs_a_restart_is_logged_and_left_alone(tmp_path, log_events):
    """Only limits change live: another changed setting is logged as taking effect at a restart, and stays as it was."""
    service, factory, config = served(tmp_path, "server-name = First\n")
    config.write_text("server-name = Second\nflood-rate = 9\n")
    service.reload()
    assert factory.chat.server_name == "First"
    assert factory.chat.limits.flood_rate == 9
    assert messages(log_events, "warn") == [
        f"SIGHUP: {config} changes settings that take effect only at a restart: "
        "server-name 'First' -> 'Second'"]


def test_the_command_line_still_wins_at_a_reload(tmp_path, log_events):
    """A limit given on the command line keeps its value; the log says the file's is ignored."""
    service, factory, config = served(tmp_path, "", "--max-output", "5000")
    config.write_text("max-output = 1\n")
    service.reload()
    assert factory.chat.limits.max_output == 5000
    assert (f"SIGHUP: max-output = 1 in {config} is ignored: the command line's "
            "--max-output 5000 wins") in messages(log_events, "info")


def test_an_unusable_file_at_a_reload_keeps_every_setting(tmp_path, log_events):
    """A mistake in the file at a reload changes nothing (not even its good lines) and logs the mistake."""
    service, factory, config = served(tmp_path, "flood-rate = 4\n")
    config.write_text("flood-rate = 1\nmax-output = lots\n")
    service.reload()
    assert factory.chat.limits.flood_rate == 4
    assert messages(log_events, "error") == [
        f"SIGHUP: kept every setting as it was: {config}, line 2: max-output: "
        "'lots' is not a number"]


def test_new_flood_limits_hold_for_connections_made_after_the_reload(tmp_path):
    """Flood control is fixed when a connection opens: after a reload the next one gets the new burst."""
    service, factory, config = served(tmp_path, "flood-burst = 50\nflood-rate = 1\n")
    config.write_text("flood-burst = 2\nflood-rate = 1\n")
    service.reload()
    bob = FakeClient(factory)
    bob.send("bob", *[f"line {i}" for i in range(5)])
    assert any("Slow down" in line for line in bob.lines())


def test_the_password_check_queue_is_resized_and_starts_waiting_checks():
    """Raising --max-password-checks live starts the checks that were waiting."""
    queue = CheckQueue(running=1, per_address=0, waiting=0)
    started = []

    def job():
        started.append(1)
        return defer.Deferred()  # never done

    queue.submit(job, "a")
    queue.submit(job, "b")
    assert (len(started), queue.waiting) == (1, 1)
    queue.resize(2, 0, 0)
    assert (len(started), queue.waiting) == (2, 0)


def test_sighup_checks_the_admin_password_file_and_logs_a_broken_edit(tmp_path, log_events):
    """The admin password file is read at every login anyway; a reload reads it too, so the log shows at once whether it changed or was broken by an edit."""
    passwd = tmp_path / "admin.passwd"
    passwd.write_text(f"admin:{hash_password('Secret-Pass-1')}\n")
    passwd.chmod(0o600)
    chat = Chat(clock=task.Clock())
    reloader = Reloader(chat, admin_files=[("admin-passwd", str(passwd))])
    reloader.reload()
    assert messages(log_events, "info")[-1] == "SIGHUP: --admin-passwd unchanged (1 user)"
    passwd.write_text(passwd.read_text() + f"ops:{hash_password('Other-Pass-2')}\n")
    reloader.reload()
    assert messages(log_events, "info")[-1] == "SIGHUP: --admin-passwd changed (2 users)"
    passwd.write_text("admin has no hash\n")
    reloader.reload()
    assert messages(log_events, "info")[-1] == "SIGHUP: --admin-passwd unusable"
    [error] = messages(log_events, "error")
    assert error.startswith("SIGHUP: --admin-passwd: ") and error.endswith(
        "nobody can log in with it until it is mended")


def test_an_unchanged_motd_tells_nobody(tmp_path):
    """Users hear about a reload only when the message of the day changed."""
    motd = tmp_path / "motd"
    motd.write_text("news")
    chat = Chat(clock=task.Clock(), motd="news")
    from chatservice.frontends.line.factory import ChatFactory

    factory = ChatFactory(chat)
    alice = FakeClient(factory)
    alice.send("alice")
    alice.take()
    Reloader(chat, motd_path=str(motd)).reload()
    assert alice.take() == []
