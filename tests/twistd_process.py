"""
Helpers for the tests that run the installed package the way an operator
does: the C{twistd} next to this Python, as a subprocess, with its state
kept under the test's C{tmp_path}.

- L{run_twistd} runs C{twistd ARGS} to completion; L{run_chat} runs
  C{twistd -n chat ARGS} to completion and times it;
- L{start_twistd} starts C{twistd -n chat ARGS} on a port of 127.0.0.1 that
  the kernel picks and returns a L{Twistd} once it accepts connections;
- L{start_daemon} starts C{twistd chat ARGS} the way it daemonizes by
  default, with its pid file and log file in C{tmp_path}, and returns a
  L{Daemon} once it accepts connections;
- L{log_in} answers the name prompt over a L{BlockingClient}.

No port is picked by the tests: the server listens on C{tcp:0} and the
tests read the port it got from its log ("ChatFactory starting on PORT"),
so no other program can take the port in between.

Everything here blocks, with a timeout; nothing imports the reactor.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Optional

import pytest

from netclient import BlockingClient

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
#: Seconds for twistd to start listening, and to exit after a signal.
START_TIMEOUT = 10
EXIT_TIMEOUT = 10
#: Seconds for a twistd run that only prints something, or should stop at
#: once with an error.
COMMAND_TIMEOUT = 30


def twistd_command(*args) -> list:
    """The command line C{twistd ARGS}, after checking that this Python's twistd exists."""
    assert os.path.exists(TWISTD), f"{TWISTD} is missing: is chatservice installed?"
    return [TWISTD, *args]


def twistd_env(tmp_path):
    """The environment for twistd: state kept under C{tmp_path}, output unbuffered."""
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_twistd(tmp_path, *args):
    """Run C{twistd ARGS} to completion; return (exit code, stdout + stderr)."""
    done = subprocess.run(
        twistd_command(*args), cwd=str(tmp_path), env=twistd_env(tmp_path),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT,
    )
    return done.returncode, done.stdout.decode("utf-8", "replace")


#: The C{--port} the helpers give twistd first: a port the kernel picks.
ANY_PORT = "tcp:0:interface=127.0.0.1"
#: What Twisted logs when the chat listens on a TCP port (a text line, or the
#: text of a JSON record with --log-format json).
LISTENING = re.compile(r"\bChatFactory starting on (\d+)(?=\"|$)", re.MULTILINE)


def run_chat(tmp_path, *args):
    """Run C{twistd -n --pidfile= chat ARGS} on a port the kernel picks to completion; return (exit code, output, seconds)."""
    started = time.monotonic()
    code, out = run_twistd(tmp_path, "-n", "--pidfile=", "chat", "--port", ANY_PORT, *args)
    return code, out, time.monotonic() - started


def listening_port(read_log: Callable[[], str]) -> Optional[int]:
    """
    The TCP port of the chat's first C{--port} (the helpers give
    L{ANY_PORT} first, and twistd listens in the order given), as read
    from the log; L{None} until it is there.
    """
    found = LISTENING.search(read_log())
    return int(found.group(1)) if found else None


def wait_until_serving(read_log: Callable[[], str], running: Callable[[], bool],
                       cleanup: Callable[[], None]) -> int:
    """
    Return the chat's port once the log names it and it accepts a
    connection.  Fail the test (after C{cleanup}) if C{running()} turns
    false first, or after L{START_TIMEOUT} seconds.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        port = listening_port(read_log)
        if port is not None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                pass
        if not running():
            cleanup()
            pytest.fail(f"twistd exited before serving:\n{read_log()}")
        if time.monotonic() > deadline:
            cleanup()
            pytest.fail(f"twistd not listening after {START_TIMEOUT}s:\n{read_log()}")
        time.sleep(0.05)


class Twistd:
    """A C{twistd -n chat} subprocess, where it listens, and its output."""

    def __init__(self, process: subprocess.Popen, log_path, port: Optional[int] = None) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    def log(self) -> str:
        """Everything twistd wrote so far."""
        return self.log_path.read_text("utf-8", "replace")

    def connect(self) -> BlockingClient:
        """Open a netcat-like connection; the caller closes it."""
        return BlockingClient(self.port)

    def stop(self) -> None:
        """Make sure the process is gone (SIGKILL if still running)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(EXIT_TIMEOUT)


def start_twistd(tmp_path, *args, twistd_args=()) -> Twistd:
    """
    Start C{twistd -n --pidfile= TWISTD_ARGS chat --port
    tcp:0:interface=127.0.0.1 ARGS},
    with its output in C{tmp_path/twistd.out}; return once it accepts
    connections on the port its log names.  Fail the test (leaving no
    process behind) if it exits or is not listening within
    L{START_TIMEOUT} seconds.  The caller calls L{Twistd.stop} when done.
    """
    log_path = tmp_path / "twistd.out"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            twistd_command("-n", "--pidfile=", *twistd_args, "chat", "--port", ANY_PORT,
                           *args),
            cwd=str(tmp_path), env=twistd_env(tmp_path),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    running = Twistd(process, log_path)
    running.port = wait_until_serving(running.log, lambda: process.poll() is None,
                                      running.stop)
    return running


def pid_alive(pid: int) -> bool:
    """Whether process C{pid} exists and is not a zombie (nobody may reap a daemon here)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")


class Daemon:
    """
    A daemonized C{twistd chat}: not a child of the test (twistd forked
    twice), so it is known by the pid in its pid file and waited for by
    polling.
    """

    def __init__(self, pid: int, port: int, pid_path, log_path) -> None:
        self.pid = pid
        self.port = port
        self.pid_path = pid_path
        self.log_path = log_path

    def log(self) -> str:
        """Everything in twistd's log file so far."""
        return self.log_path.read_text("utf-8", "replace")

    def connect(self) -> BlockingClient:
        """Open a netcat-like connection; the caller closes it."""
        return BlockingClient(self.port)

    def alive(self) -> bool:
        """Whether the daemon is still running."""
        return pid_alive(self.pid)

    def wait_gone(self, timeout: float = EXIT_TIMEOUT) -> bool:
        """Poll until the daemon has exited; return whether it did within C{timeout}."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Make sure the daemon is gone (SIGKILL if still running)."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self.wait_gone()


def start_daemon(tmp_path, *args) -> Daemon:
    """
    Start C{twistd --pidfile PID --logfile LOG chat --port
    tcp:0:interface=127.0.0.1 ARGS} without C{-n}, so that it daemonizes,
    with C{PID} and C{LOG} in C{tmp_path}; wait for the launching process
    to exit 0 (twistd's parent waits for the daemon to report that it
    started), then until the daemon accepts connections on the port its
    log names.  Fail the test (leaving no process behind) otherwise.  The
    caller calls L{Daemon.stop} when done.
    """
    pid_path = tmp_path / "twistd.pid"
    log_path = tmp_path / "twistd.log"
    try:
        done = subprocess.run(
            twistd_command("--pidfile", str(pid_path), "--logfile", str(log_path),
                           "chat", "--port", ANY_PORT, *args),
            cwd=str(tmp_path), env=twistd_env(tmp_path), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=START_TIMEOUT)
        code, out = done.returncode, done.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        code, out = "no exit", (e.stdout or b"").decode("utf-8", "replace")
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        pid = None
    daemon = Daemon(pid, None, pid_path, log_path) if pid else None
    if code != 0 or daemon is None:
        if daemon is not None:
            daemon.stop()
        log = log_path.read_text("utf-8", "replace") if log_path.exists() else ""
        pytest.fail(f"twistd launcher: {code}, pid file: {pid}:\n{out}\nlog:\n{log}")
    daemon.port = wait_until_serving(daemon.log, daemon.alive, daemon.stop)
    return daemon


def log_in(client: BlockingClient, typed: str, name: Optional[str] = None,
           motd: Optional[str] = None) -> None:
    """
    Answer the name prompt with C{typed} and wait for the welcome for
    C{name} (by default C{typed}), then the message of the day C{motd} if
    one is given, then the join of #lobby.
    """
    if name is None:
        name = typed
    client.expect("What's your name?")
    client.say(typed)
    client.expect(lambda line: line == f"-- Hello {name}, welcome to chatservice!")
    if motd is not None:
        client.expect(lambda line: line == f"-- {motd}")
    client.expect(lambda line: line == "-> You joined #lobby")
