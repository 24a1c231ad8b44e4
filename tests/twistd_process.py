"""
Helpers for the tests that run the installed package the way an operator
does: the C{twistd} next to this Python, as a subprocess, with its state
kept under the test's C{tmp_path}.

- L{run_twistd} runs C{twistd ARGS} to completion; L{run_chat} runs
  C{twistd -n chat ARGS} to completion and times it;
- L{start_twistd} starts C{twistd -n chat ARGS} on a free port of 127.0.0.1
  and returns a L{Twistd} once it accepts connections;
- L{log_in} answers the name prompt over a L{BlockingClient}.

Everything here blocks, with a timeout; nothing imports the reactor.
"""

import os
import socket
import subprocess
import sys
import time
from typing import Optional

import pytest

from netclient import BlockingClient, free_port

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


def run_chat(tmp_path, *args):
    """Run C{twistd -n --pidfile= chat ARGS} on a free port to completion; return (exit code, output, seconds)."""
    started = time.monotonic()
    code, out = run_twistd(
        tmp_path, "-n", "--pidfile=", "chat",
        "--port", f"tcp:{free_port()}:interface=127.0.0.1", *args)
    return code, out, time.monotonic() - started


class Twistd:
    """A C{twistd -n chat} subprocess, where it listens, and its output."""

    def __init__(self, process: subprocess.Popen, port: int, log_path) -> None:
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


def start_twistd(tmp_path, *args) -> Twistd:
    """
    Start C{twistd -n --pidfile= chat ARGS} on a free port of 127.0.0.1,
    with its output in C{tmp_path/twistd.out}; return once it accepts
    connections.  Fail the test (leaving no process behind) if it exits or
    is not listening within L{START_TIMEOUT} seconds.  The caller calls
    L{Twistd.stop} when done.
    """
    command = twistd_command("-n", "--pidfile=", "chat")
    port = free_port()
    log_path = tmp_path / "twistd.out"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "--port", f"tcp:{port}:interface=127.0.0.1", *args],
            cwd=str(tmp_path), env=twistd_env(tmp_path),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    running = Twistd(process, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            running.stop()
            pytest.fail(f"twistd exited with {process.returncode}:\n{running.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return running
        except OSError:
            if time.monotonic() > deadline:
                running.stop()
                pytest.fail(f"twistd not listening after {START_TIMEOUT}s:\n{running.log()}")
            time.sleep(0.05)


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
