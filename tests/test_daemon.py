"""
The server's life as an operator runs it, with the installed C{twistd} as a
subprocess: daemonized (twistd's default, without C{-n}), start-up failures
that are one line, C{SIGHUP}, and a second stop signal during the shutdown.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from dbfile import query
from twistd_process import (
    ANY_PORT,
    COMMAND_TIMEOUT,
    EXIT_TIMEOUT,
    log_in,
    start_daemon,
    start_twistd,
    twistd_command,
    twistd_env,
)

SHUTDOWN_LINE = "-- The server is shutting down. Goodbye!"
PASSWORD = "Daemon-Pass-731"
#: An Ed25519 public key for --admin-keys (nobody holds its private half).
ADMIN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnXvVbdVZl2TH1lTGLrCFAHAl3U4B36DkAafylVwoSL"
             " someone\n")


def exactly(text: str):
    """A predicate for a line equal to C{text}."""
    return lambda line: line == text


def assert_clean_log(log: str) -> None:
    """The log of an orderly run: it shut down, with no traceback and nothing lost."""
    assert "Server Shut Down." in log, log
    assert "Traceback" not in log, log
    assert "Unhandled" not in log, log
    assert "may be lost" not in log, log


def admin_keys(tmp_path) -> str:
    """An authorized_keys file for --admin-keys."""
    path = tmp_path / "authorized_keys"
    path.write_text(ADMIN_KEY)
    path.chmod(0o644)
    return str(path)


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


def test_a_daemon_logging_json_writes_one_object_per_line_without_passwords(tmp_path):
    """With --log-format json the daemon's --logfile holds one JSON object per line, each with time, level, namespace and text, and the event's own fields (a login's name and peer); a password typed at /register appears nowhere in it."""
    daemon = start_daemon(tmp_path, "--log-format", "json")
    try:
        with daemon.connect() as alice:
            log_in(alice, "alice")
            alice.say(f"/register {PASSWORD}")
            alice.expect("-- The name alice is now registered to you.", timeout=10)
        os.kill(daemon.pid, signal.SIGTERM)
        assert daemon.wait_gone(), f"still running after SIGTERM:\n{daemon.log()}"
    finally:
        daemon.stop()
    log = daemon.log()
    records = [json.loads(line) for line in log.splitlines()]
    assert all(set(r) >= {"time", "level", "namespace", "text"} for r in records), log
    login = next(r for r in records if r["text"].startswith("login alice from "))
    assert login["name"] == "alice" and login["peer"].startswith("127.0.0.1:")
    assert login["level"] == "info" and login["time"].endswith("+00:00")
    assert records[-1]["text"] == "Server Shut Down."
    assert PASSWORD not in log
    assert "Traceback" not in log


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


def reachable_by_others(path: str) -> bool:
    """Whether every directory above C{path}, and C{path}, lets other users through."""
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def run_as_nobody():
    """
    The uid and gid of the user 'nobody', or skip: switching users needs
    root, and the server, once it is nobody, may still import a module of
    the installed package or of Twisted.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("twistd --uid needs root")
    import pwd

    import chatservice
    import twisted

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    for module in (chatservice, twisted):
        if not reachable_by_others(os.path.dirname(module.__file__)):
            pytest.skip(f"{os.path.dirname(module.__file__)} is not reachable by nobody")
    return nobody.pw_uid, nobody.pw_gid


def test_with_twistd_uid_the_files_belong_to_the_user_it_runs_as(tmp_path):
    """Started as root with twistd --uid/--gid, the database, its lock and the admin host key are created as that user, so the server it becomes after makeService can lock and write them."""
    uid, gid = run_as_nobody()
    shared = tempfile.mkdtemp(prefix="chatservice-uid-")  # not under tmp_path: it is 0700 root
    try:
        os.chmod(shared, 0o777)
        data_dir = os.path.join(shared, "data")
        server = start_twistd(tmp_path, "--data-dir", data_dir, "--flood-rate", "0",
                              "--admin-port", "tcp:0", "--admin-keys", admin_keys(tmp_path),
                              twistd_args=("--uid", str(uid), "--gid", str(gid)))
        try:
            with server.connect() as alice:
                log_in(alice, "alice")
                alice.say("said as nobody")
                alice.sync("done")
                server.process.send_signal(signal.SIGTERM)
                alice.expect(exactly(SHUTDOWN_LINE))
            code = server.process.wait(EXIT_TIMEOUT)
        finally:
            server.stop()
        log = server.log()
        assert code in (0, -signal.SIGTERM), log
        assert_clean_log(log)
        for name in ("", "chat.db", "chat.db.lock", "admin_host_ed25519_key"):
            info = os.stat(os.path.join(data_dir, name))
            assert (info.st_uid, info.st_gid) == (uid, gid), name
        assert query(os.path.join(data_dir, "chat.db"),
                     "SELECT text FROM history WHERE kind = 'say'") == [("said as nobody",)]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# -- start-up failures: one line, before anything starts ------------------------------


@pytest.mark.parametrize("daemonize", [False, True], ids=["foreground", "daemon"])
@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_a_bad_admin_host_key_is_one_line_before_the_database(tmp_path, damage, daemonize):
    """Garbage, or a directory, where the admin host key should be stops the start with one 'twistd chat:' line on stderr and status 1, before the database is created or locked."""
    data_dir = tmp_path / "state"
    data_dir.mkdir(mode=0o700)
    key = data_dir / "admin_host_ed25519_key"
    if damage == "garbage":
        key.write_bytes(b"this is not a key\n")
        key.chmod(0o600)
        expected = (f"twistd chat: admin host key {key} is not a usable private key (")
    else:
        key.mkdir(mode=0o700)
        expected = f"twistd chat: admin host key {key}: Is a directory. Check --data-dir."
    twistd = (["-n", "--pidfile="] if not daemonize else
              ["--pidfile", str(tmp_path / "t.pid"), "--logfile", str(tmp_path / "t.log")])
    code, out, err = run_separately(
        tmp_path, *twistd, "chat", "--port", ANY_PORT, "--data-dir", str(data_dir),
        "--admin-port", "tcp:0", "--admin-keys", admin_keys(tmp_path))
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, (out, err)
    [line] = err.strip().splitlines()
    assert line.startswith(expected), line
    assert not (data_dir / "chat.db").exists()
    assert not (data_dir / "chat.db.lock").exists()
    assert not (tmp_path / "t.pid").exists()
    assert not (tmp_path / "t.log").exists()  # it stopped before twistd began logging


def test_a_chat_port_in_use_is_one_line_and_status_1(tmp_path):
    """'twistd -n chat' on a --port another program listens on exits 1 with one line naming the port, and no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        code, out, err = run_separately(tmp_path, "-n", "--pidfile=", "chat",
                                        "--port", description)
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, (out, err)
    assert err.strip().splitlines() == [
        f"twistd chat: cannot listen on --port {description}: Address already in use "
        f"(another program is listening there)"], (out, err)
    assert "the server cannot start: cannot listen on --port" in out  # and in the log
    assert "Server Shut Down." not in out


def test_a_daemon_whose_port_is_in_use_exits_1_and_logs_one_line(tmp_path):
    """Daemonized, a --port in use is found after the fork: twistd reports it to the terminal and exits 1, the log file holds the one line (no traceback), and the pid file is gone."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_separately(
            tmp_path, "--pidfile", str(tmp_path / "t.pid"), "--logfile", str(tmp_path / "t.log"),
            "chat", "--port", f"tcp:{port}:interface=127.0.0.1")
    log = (tmp_path / "t.log").read_text()
    assert code == 1, (out, err, log)
    assert "An error has occurred" in err and "cannot listen on --port" in err, err
    assert "Traceback" not in log, log
    assert (f"the server cannot start: cannot listen on --port tcp:{port}:interface=127.0.0.1: "
            f"Address already in use (another program is listening there)") in log, log
    # The daemon removes its pid file just after telling the launcher.
    deadline = time.monotonic() + EXIT_TIMEOUT
    while (tmp_path / "t.pid").exists():
        assert time.monotonic() < deadline, "the pid file stayed"
        time.sleep(0.05)


def test_an_admin_port_in_use_is_one_line_and_status_1(tmp_path):
    """'twistd -n chat --admin-port' on a port another program listens on exits 1 with one line naming it, instead of running on without the admin shell after a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_separately(
            tmp_path, "-n", "--pidfile=", "chat", "--port", ANY_PORT,
            "--data-dir", str(tmp_path / "state"),
            "--admin-port", f"tcp:{port}", "--admin-keys", admin_keys(tmp_path))
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, (out, err)
    assert err.strip().splitlines() == [
        f"twistd chat: cannot listen on --admin-port tcp:{port}:interface=127.0.0.1: "
        f"Address already in use (another program is listening there)"], (out, err)


# -- SIGHUP --------------------------------------------------------------------------


def test_sighup_reloads_motd_limits_and_admin_files_and_drops_nobody(tmp_path):
    """SIGHUP re-reads the --motd file (users hear that it changed), the --config file (a changed limit is in force at once, a setting that needs a restart is logged as such, the command line still wins) and the admin key file, logging what changed; every connection stays open and keeps chatting; lines said just before a SIGHUP and a SIGTERM are all in the database."""
    motd = tmp_path / "motd.txt"
    motd.write_text("first message of the day\n")
    config = tmp_path / "chat.conf"
    config.write_text("# limits\nmax-name-length = 20\nflood-rate = 0\nmax-output = 99999\n")
    server = start_twistd(tmp_path, "--motd", str(motd), "--config", str(config),
                          "--max-output", "500000", "--admin-port", ANY_PORT,
                          "--admin-keys", admin_keys(tmp_path),
                          "--data-dir", str(tmp_path / "state"))
    try:
        with server.connect() as alice, server.connect() as bob:
            log_in(alice, "alice", motd="first message of the day")
            log_in(bob, "bob", motd="first message of the day")
            motd.write_text("second message of the day\n")
            config.write_text("max-name-length = 5\nflood-rate = 0\nmax-output = 1\n"
                              "history-limit = 7\n")
            server.process.send_signal(signal.SIGHUP)
            for client in (alice, bob):
                client.expect(exactly("-- Announcement: The message of the day has "
                                      "changed: type /motd to read it."))
            alice.say("/motd")
            alice.expect(exactly("-- second message of the day"))
            alice.say("after the hangup")
            bob.expect(exactly("<alice> after the hangup"))
            bob.say("still here")
            alice.expect(exactly("<bob> still here"))
            with server.connect() as carol:
                carol.expect("What's your name?")
                carol.say("carolyn")  # longer than the new max-name-length
                carol.expect(lambda line: "5" in line and "carolyn" not in line)
                carol.say("carol")
                carol.expect(exactly("-- Hello carol, welcome to chatservice!"))
                carol.expect(exactly("-- second message of the day"))

            said = [f"just before {i}" for i in range(50)]
            alice.say(*said)
            alice.sync("a1")  # the server has read them: they are queued for the disk
            server.process.send_signal(signal.SIGHUP)
            time.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            for client in (alice, bob):
                client.expect(exactly(SHUTDOWN_LINE))
                client.expect_eof()
            code = server.process.wait(EXIT_TIMEOUT)
    finally:
        server.stop()
    log = server.log()
    assert code in (0, -signal.SIGTERM), log
    assert_clean_log(log)
    assert f"message of the day changed ({motd})" in log, log
    assert f"message of the day unchanged ({motd})" in log, log
    assert f"limits changed from {config}: max-name-length 20 -> 5" in log, log
    assert "history-limit 10000 -> 7" in log and "only at a restart" in log, log
    assert "max-output = 1 in" in log and "--max-output 500000 wins" in log, log
    assert "--admin-keys unchanged (1 key)" in log, log
    assert "first message" not in log
    rows = query(tmp_path / "state" / "chat.db",
                 "SELECT text FROM history WHERE kind = 'say' ORDER BY id")
    assert [text for (text,) in rows] == ["after the hangup", "still here"] + said


# -- a second stop signal --------------------------------------------------------------


def test_a_second_sigterm_hurries_the_shutdown_without_a_traceback(tmp_path):
    """A second SIGTERM while a client that does not read holds the shutdown in its grace period logs one 'already shutting down' line, aborts that connection at once (well before the grace period ends), and the server exits with a clean log."""
    server = start_twistd(tmp_path, "--flood-rate", "0", "--max-output", "0",
                          "--shutdown-grace", "30", "--data-dir", str(tmp_path / "state"))
    stuck = socket.socket()
    try:
        with server.connect() as talker:
            log_in(talker, "talker")
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.settimeout(5)
            stuck.connect(("127.0.0.1", server.port))
            stuck.sendall(b"stuck\n")  # logs in, then never reads again
            talker.expect(exactly("-> stuck joined #lobby"))
            # Far more than the kernel buffers: most of it waits in the server.
            talker.say(*(["x" * 2000] * 4000))
            talker.sync("sent")
            server.process.send_signal(signal.SIGTERM)
            talker.expect(exactly(SHUTDOWN_LINE))
            talker.expect_eof()
        time.sleep(0.5)
        assert server.process.poll() is None, server.log()  # held by the stuck client
        hurried = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(EXIT_TIMEOUT)
        assert time.monotonic() - hurried < EXIT_TIMEOUT
    finally:
        stuck.close()
        server.stop()
    log = server.log()
    assert code in (0, -signal.SIGTERM), log
    assert_clean_log(log)
    assert "ReactorNotRunning" not in log, log
    lines = [line for line in log.splitlines() if "already shutting down" in line]
    assert len(lines) == 1, log
    assert "SIGTERM received: already shutting down; aborting the 1 connection(s) still open" \
        in lines[0], lines
