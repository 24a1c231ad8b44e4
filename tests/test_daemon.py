"""
The server's life as an operator runs it, with the installed C{twistd} as a
subprocess: daemonized (twistd's default, without C{-n}).
"""

import os
import signal
import subprocess

from dbfile import query
from twistd_process import (
    ANY_PORT,
    COMMAND_TIMEOUT,
    log_in,
    start_daemon,
    start_twistd,
    twistd_command,
    twistd_env,
)

SHUTDOWN_LINE = "-- The server is shutting down. Goodbye!"
PASSWORD = "Daemon-Pass-731"


def exactly(text: str):
    """A predicate for a line equal to C{text}."""
    return lambda line: line == text


def assert_clean_log(log: str) -> None:
    """The log of an orderly run: it shut down, with no traceback and nothing lost."""
    assert "Server Shut Down." in log, log
    assert "Traceback" not in log, log
    assert "Unhandled" not in log, log
    assert "may be lost" not in log, log


def run_separately(tmp_path, *args):
    """Run C{twistd ARGS} to completion; return (exit code, stdout, stderr)."""
    done = subprocess.run(
        twistd_command(*args), cwd=str(tmp_path), env=twistd_env(tmp_path),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=COMMAND_TIMEOUT)
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))


# -- daemonized -------------------------------------------------------------------


def test_daemonized_server_chats_registers_and_keeps_everything(tmp_path):
    """Without -n, the daemon holds the database lock under its own pid (the pid file's), answers /register and /history, and SIGTERM to it leaves every line in the database, with a clean log."""
    data_dir = tmp_path / "data" / "chatservice"
    daemon = start_daemon(tmp_path, "--flood-rate", "0")
    try:
        assert daemon.pid != os.getpid()
        lock = (data_dir / "chat.db.lock").read_text().strip()
        assert lock == str(daemon.pid), (lock, daemon.pid, daemon.log())
        with daemon.connect() as alice, daemon.connect() as bob:
            log_in(alice, "alice")
            log_in(bob, "bob")
            alice.say(f"/register {PASSWORD}")
            alice.expect("-- The name alice is now registered to you.", timeout=10)
            said = [f"daemon line {i}" for i in range(100)]
            alice.say(*said)
            bob.expect(exactly("<alice> daemon line 99"))
            bob.say("/history 3")
            bob.expect(exactly("-- History of #lobby, last 3 lines:"), timeout=10)
            bob.expect(exactly("-- End of history of #lobby."))
            alice.say("the very last line")
            alice.sync("done")
            os.kill(daemon.pid, signal.SIGTERM)
            for client in (alice, bob):
                client.expect(exactly(SHUTDOWN_LINE))
                client.expect_eof()
        assert daemon.wait_gone(), f"still running after SIGTERM:\n{daemon.log()}"
    finally:
        daemon.stop()
    log = daemon.log()
    assert_clean_log(log)
    assert not daemon.pid_path.exists()  # twistd removes it at a clean stop
    database = data_dir / "chat.db"
    rows = query(database, "SELECT text FROM history WHERE room_key = 'lobby'"
                           " AND kind = 'say' ORDER BY id")
    assert [text for (text,) in rows] == said + ["the very last line"]
    assert [name for (name,) in query(database, "SELECT name FROM accounts")] == ["alice"]


def test_daemon_start_up_failure_is_one_line_and_starts_nothing(tmp_path):
    """A daemonized start on a database another server holds says so in one line on the terminal, exits 1, and leaves no pid file."""
    first = start_twistd(tmp_path, "--data-dir", str(tmp_path / "state"))
    try:
        code, out, err = run_separately(
            tmp_path, "--pidfile", str(tmp_path / "second.pid"),
            "--logfile", str(tmp_path / "second.log"), "chat", "--port", ANY_PORT,
            "--data-dir", str(tmp_path / "state"))
    finally:
        first.stop()
    assert code == 1, (out, err)
    assert err.strip().splitlines() == [
        f"twistd chat: the database {tmp_path / 'state' / 'chat.db'} is in use by another "
        f"chat server (pid {first.process.pid}): stop it, or give this one its own "
        f"--data-dir or --database"], err
    assert not (tmp_path / "second.pid").exists()
