"""
A full disk under the data directory, on a real file system: a small
tmpfs mounted into C{tmp_path} (which needs root; the tests skip, saying
why, where mounting is not allowed), with C{twistd -n chat} subprocesses
on it.

The chat must go on; a sender of an offline message is told whether it
was kept; every line that could not be stored is counted in the
C{stats:} line's C{writes_dropped}; the outage is logged once when it
starts (naming the full disk) and once when it ends (with what it cost);
and a restart on the full disk names the cause.
"""

import os
import re
import signal
import subprocess

import pytest

from dbfile import query
from twistd_process import EXIT_TIMEOUT, log_in, run_chat, start_twistd

#: The size of the file system the data directory lives on.
DISK_SIZE = "4m"
PASSWORD = "Zebra-Quartz-417"
OFFLINE_KEPT = "-- alice is offline; they will get your message when they next log in."
OFFLINE_LOST = ("!! alice is offline and your message was not kept: the server could "
                "not store it just now. Try /msg again later.")


@pytest.fixture
def small_disk(tmp_path):
    """
    A tmpfs of L{DISK_SIZE} mounted at C{tmp_path/disk}, unmounted at the
    end; skip where mounting is not allowed.
    """
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700",
                               "tmpfs", str(mountpoint)], capture_output=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a small file system to fill")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): "
                    f"{done.stderr.decode('utf-8', 'replace').strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


def fill(directory) -> str:
    """Fill the file system of C{directory} to the last byte; return the filler's path."""
    path = os.path.join(str(directory), "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


def stats_lines(log: str):
    """The C{writes_dropped} figure of every stats: line of C{log}."""
    return [int(n) for n in re.findall(r"stats: .* writes_dropped=(\d+)", log)]


def test_a_full_disk_loses_lines_but_says_so(small_disk, tmp_path):
    """
    With the data directory on a full disk, the chat goes on, the senders
    of offline messages are told the truth, writes_dropped counts the lost
    lines, the log has one line when the outage starts and one when it
    ends, and a restart on the full disk says the disk is full.
    """
    data_dir = small_disk / "data"
    database = data_dir / "chat.db"
    server = start_twistd(tmp_path, "--data-dir", str(data_dir), "--flood-rate", "0",
                          "--stats-interval", "0.2")
    replies = []
    said = 3000
    try:
        with server.connect() as alice, server.connect() as bob, \
                server.connect() as carol:
            log_in(alice, "alice")
            alice.say(f"/register {PASSWORD}")
            alice.expect("-- The name alice is now registered to you.")
            alice.say("/quit")
            alice.expect_eof()
            log_in(bob, "bob")
            log_in(carol, "carol")
            bob.sync("ready")
            filler = fill(small_disk)

            for start in range(0, said, 500):
                bob.say(*[f"line {i} " + "x" * 200 for i in range(start, start + 500)])
                bob.sync(f"sent {start}")
            for i in range(16):
                bob.say(f"/msg alice message {i}")
            for _ in range(16):
                replies.append(bob.expect(lambda line: "alice is offline" in line))
            # The chat went on: carol got every line, and pings answer.
            carol.expect(f"<bob> line {said - 1} ")
            assert len([line for line in carol.lines if line.startswith("<bob> line ")]) == said
            carol.sync("still here")

            # Free the disk: the next batch commits, and the outage is over.
            os.remove(filler)
            bob.say("the disk has room again")
            carol.expect("<bob> the disk has room again")
            # ... and a stats: line after that has every loss counted.
            deadline_log = _wait_for(server, lambda log: "could not write to" in log and
                                     "stats: " in log.split("could not write to", 1)[1])
            server.process.send_signal(signal.SIGTERM)
            bob.expect_eof()
        server.process.wait(EXIT_TIMEOUT)
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log, log

    starts = [line for line in log.splitlines() if "the database cannot write to" in line]
    assert len(starts) == 1, log
    assert f"the database cannot write to {data_dir}: the disk holding {data_dir} is full" \
        in starts[0], starts
    [end] = [line for line in deadline_log.splitlines()
             if "the database could not write to" in line]
    found = re.search(rf"the database could not write to {re.escape(str(data_dir))} for "
                      r"\d+ s: the disk is full; ([\d,]+) history lines and ([\d,]+) other "
                      r"changes were lost", end)
    assert found, end

    stored = query(database, "SELECT count(*) FROM history WHERE text LIKE 'line %'")[0][0]
    lost = said - stored
    assert lost > 0, "the disk never filled up: the test proves nothing"
    assert int(found.group(1).replace(",", "")) == lost
    dropped = stats_lines(deadline_log.split("could not write to", 1)[1])
    assert dropped[0] == lost + int(found.group(2).replace(",", ""))  # and the other changes

    kept = query(database, "SELECT text FROM offline ORDER BY id")
    assert replies.count(OFFLINE_KEPT) == len(kept), (replies, kept)
    assert replies.count(OFFLINE_KEPT) + replies.count(OFFLINE_LOST) == 16, replies

    # A restart on the full disk names the cause.
    fill(small_disk)
    code, out, _ = run_chat(tmp_path, "--data-dir", str(data_dir))
    assert code != 0, out
    assert out.strip().splitlines()[-1].startswith(
        f"twistd chat: cannot open the database {database}: the disk holding {data_dir} "
        f"is full"), out


def _wait_for(server, predicate, timeout: float = 10.0) -> str:
    """Wait until C{predicate(log)} holds for the server's log; return the log."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        if predicate(log):
            return log
        if time.monotonic() > deadline:
            pytest.fail(f"not in the log within {timeout}s:\n{log}")
        time.sleep(0.05)
